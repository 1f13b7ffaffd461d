package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// The core promise: the same source gives the same bytes, whoever builds it.
func TestSnapshotIsReproducible(t *testing.T) {
	skipShort(t)
	t.Parallel()
	// The shared snapshot is the example's checkout, umask 022, UTC; the
	// other a copy with random mtimes and other permissions, umask 077, in
	// a time zone 12:45 ahead.
	s1 := sharedSnapshot(t)
	b := t.TempDir()
	copyExample(t, filepath.Join(b, "src"), 0o600, 0o700)
	s2 := releaseSnapshot(t, filepath.Join(b, "src", "fwrelease.yaml"), filepath.Join(b, "dist"), "077", "Pacific/Chatham")

	if len(s1.manifest.Artifacts) != 4 {
		t.Fatalf("%d artifacts, want 4 (Python 3.10–3.13)", len(s1.manifest.Artifacts))
	}
	for i, art := range s1.manifest.Artifacts {
		t1 := readFile(t, filepath.Join(s1.dist, art.File))
		t2 := readFile(t, filepath.Join(s2.dist, art.File))
		if !bytes.Equal(t1, t2) {
			t.Errorf("%s differs between the two builds", art.File)
		}
		sum := sha256.Sum256(t1)
		if art.SHA256 != hex.EncodeToString(sum[:]) || art.Size != int64(len(t1)) {
			t.Errorf("%s: manifest says %d bytes sha256 %s; the file is %d bytes sha256 %x", art.File, art.Size, art.SHA256, len(t1), sum)
		}
		if s2.manifest.Artifacts[i].SHA256 != art.SHA256 {
			t.Errorf("%s: manifests disagree", art.File)
		}
		// The layers and the mount image, too: same digests in both.
		other := s2.manifest.Artifacts[i]
		sameLayer := func(a, b manifest.Layer) bool {
			return a.Name == b.Name && a.Digest == b.Digest && a.Size == b.Size && a.DiffID == b.DiffID && a.TarSize == b.TarSize
		}
		if art.Images == nil || other.Images == nil || !slices.EqualFunc(art.Layers, other.Layers, sameLayer) ||
			strings.TrimPrefix(art.Images.Mount, s1.dist) != strings.TrimPrefix(other.Images.Mount, s2.dist) {
			t.Errorf("%s: layers or images differ between the two builds: %+v %+v, then %+v %+v", art.Target.ID, art.Layers, art.Images, other.Layers, other.Images)
		}
		sh1 := readFile(t, filepath.Join(s1.dist, "shards", art.Target.ID+".json"))
		sh2 := readFile(t, filepath.Join(s2.dist, "shards", art.Target.ID+".json"))
		if !bytes.Equal(sh1, sh2) {
			t.Errorf("shard %s differs between the two builds", art.Target.ID)
		}
		if len(art.URLs) != 1 || !strings.HasPrefix(art.URLs[0], "file://"+s1.dist+"/local/v1.2.0/") {
			t.Errorf("%s: urls %v, want the local channel's file:// URL", art.File, art.URLs)
		}
		if published := readFile(t, strings.TrimPrefix(art.URLs[0], "file://")); !bytes.Equal(published, t1) {
			t.Errorf("%s: the local channel's copy differs from dist/", art.File)
		}
		// Each layer is published beside the tarball, as the bytes its
		// digest names.
		for _, l := range art.Layers {
			want := "file://" + s1.dist + "/local/v1.2.0/" + strings.TrimSuffix(art.File, ".tar.gz") + "." + l.Name + ".layer.tar.gz"
			if len(l.URLs) != 1 || l.URLs[0] != want {
				t.Errorf("%s layer %s: urls %v, want [%s]", art.Target.ID, l.Name, l.URLs, want)
				continue
			}
			data := readFile(t, strings.TrimPrefix(l.URLs[0], "file://"))
			if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != l.Digest || int64(len(data)) != l.Size {
				t.Errorf("%s layer %s: the published file is not %s, %d bytes", art.Target.ID, l.Name, l.Digest, l.Size)
			}
		}
	}
	// The manifest itself, apart from the local paths, is pinned by a
	// golden file: a change in any tarball's bytes shows up here. It is
	// rewritten only by `go test ./cmd/fwrelease -run TestSnapshotIsReproducible
	// -update`, in the commit that changes the bytes, saying why they changed.
	text := strings.ReplaceAll(string(readFile(t, filepath.Join(s1.dist, "manifest.json"))), s1.dist, "$DIST")
	golden(t, "snapshot-manifest.golden.json", text)
}

// Each target's tarball, extracted as the start command would, boots with
// the matching real interpreter, and refuses any other.
func TestSnapshotBootsOnEachPython(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	s := sharedSnapshot(t)
	for _, art := range s.manifest.Artifacts {
		t.Run(art.Target.ID, func(t *testing.T) {
			t.Parallel()
			fw := filepath.Join(dir, "opt", art.Target.ID)
			os.MkdirAll(fw, 0o755)
			if out, err := exec.Command("tar", "-xzf", filepath.Join(s.dist, art.File), "-C", fw, "--strip-components=1").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			wrong := "3.10"
			if art.Target.Python == "3.10" {
				wrong = "3.13"
			}
			// Only the image's interpreters on PATH (no pyenv shims): python3
			// and python3.X of the target; python3 another version beside the
			// target's python3.X, as in GPU images; python3 alone, another
			// version.
			right, other := python(t, art.Target.Python), python(t, wrong)
			for _, c := range []struct {
				name            string
				python3, target string
				wantErr         string
			}{
				{"python3 and python3.X", right, right, ""},
				{"python3 another version, python3.X there", other, right, ""},
				{"python3 another version only", other, "", fmt.Sprintf("this tarball is built for Python %s but python3 is Python %s", art.Target.Python, wrong)},
			} {
				path := toolbox(t, c.python3, "cat", "dirname")
				if c.target != "" {
					os.Symlink(c.target, filepath.Join(path, "python"+art.Target.Python))
				}
				boot := exec.Command(filepath.Join(fw, "bootstrap.sh"))
				boot.Env = []string{"FLASH_WORKER_SELFTEST=1", "PATH=" + path}
				out, err := boot.CombinedOutput()
				want := fmt.Sprintf("flash-worker 1.2.0 ok python %s\n", art.Target.Python)
				switch {
				case c.wantErr == "" && (err != nil || string(out) != want):
					t.Errorf("%s: bootstrap.sh: %v, output %q, want %q", c.name, err, out, want)
				case c.wantErr != "" && (err == nil || !strings.Contains(string(out), c.wantErr) || strings.Contains(string(out), " ok python ")):
					t.Errorf("%s: %v, output %q; want a failure saying %q", c.name, err, out, c.wantErr)
				}
			}
		})
	}
}

// The layout of docs/targets-and-tarball.md, read back by fwrelease's own safe reader and
// checked against MANIFEST.json.
func TestSnapshotTarballLayout(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s := sharedSnapshot(t)
	for _, art := range s.manifest.Artifacts {
		t.Run(art.Target.ID, func(t *testing.T) {
			f, err := os.Open(filepath.Join(s.dist, art.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, err := archive.Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if c.Top != "flash-worker" || string(c.Version) != "1.2.0\n" {
				t.Errorf("top %q, .version %q", c.Top, c.Version)
			}
			// The C extension must be the build for the target's ABI, not the host's.
			abi := "cpython-" + strings.ReplaceAll(art.Target.Python, ".", "") + "-x86_64-linux-gnu.so"
			foundExt := 0
			modes := map[string]int64{}
			for _, m := range c.Members {
				modes[m.Name] = m.Mode
				if strings.HasSuffix(m.Name, ".so") {
					if strings.HasSuffix(m.Name, abi) {
						foundExt++
					} else {
						t.Errorf("%s is not built for %s (want *%s)", m.Name, art.Target.ID, abi)
					}
				}
				if strings.Contains(m.Name, "__pycache__") || strings.HasSuffix(m.Name, ".pyc") {
					t.Errorf("%s should have been slimmed", m.Name)
				}
			}
			if foundExt == 0 {
				t.Errorf("no fwdemo_speedups extension built for %s (want *%s)", art.Target.ID, abi)
			}
			if modes["flash-worker/bootstrap.sh"] != 0o755 || modes["flash-worker/src/handler.py"] != 0o644 {
				t.Errorf("modes: bootstrap.sh %o, handler.py %o", modes["flash-worker/bootstrap.sh"], modes["flash-worker/src/handler.py"])
			}
			var meta build.Metadata
			if err := json.Unmarshal(c.Manifest, &meta); err != nil {
				t.Fatal(err)
			}
			if meta.Version != "1.2.0" || meta.PythonVersion != art.Target.Python || meta.Target != art.Target.ID || meta.Platform != "linux/amd64" ||
				meta.Layout != "overlay" || meta.Source.Commit != fixedCommit || meta.Source.Repository != "runpod-workers/flash" {
				t.Errorf("MANIFEST.json = %+v", meta)
			}
			var names []string
			for _, p := range meta.Packages {
				names = append(names, p.Name+"=="+p.Version)
			}
			if strings.Join(names, " ") != "fwdemo-greet==0.1.0 fwdemo-speedups==0.1.0 fwdemo-text==0.1.0" {
				t.Errorf("packages %v", names)
			}
			if got := treeSHA256(t, f.Name()); got != meta.TreeSHA256 {
				t.Errorf("tree_sha256 %s, recomputed %s", meta.TreeSHA256, got)
			}
		})
	}
}

// treeSHA256 recomputes MANIFEST.json's tree digest from an extraction, as
// `sha256sum` of every file but MANIFEST.json, in C order, would.
func treeSHA256(t *testing.T, tarball string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", tarball, "-C", dir, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "MANIFEST.json" {
			return nil
		}
		f, _ := os.Open(p)
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		lines = append(lines, fmt.Sprintf("%x  %s\n", h.Sum(nil), rel))
		return nil
	})
	sort.Slice(lines, func(i, j int) bool {
		return strings.SplitN(lines[i], "  ", 2)[1] < strings.SplitN(lines[j], "  ", 2)[1]
	})
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	return hex.EncodeToString(sum[:])
}
