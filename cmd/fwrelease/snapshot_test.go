package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

const fixedCommit = "0123456789abcdef0123456789abcdef01234567"

// copyExample copies the example worker, giving every file a random mtime
// and the given permission bits, as another checkout on another machine
// would.
func copyExample(t *testing.T, dst string, fileMode, dirMode os.FileMode) {
	t.Helper()
	src := filepath.Join(repoRoot(t), "examples", "flash-worker")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, dirMode)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		mode := fileMode
		if info.Mode()&0o100 != 0 {
			mode |= 0o100
		}
		if err := os.WriteFile(out, data, mode); err != nil {
			return err
		}
		when := time.Unix(rand.Int63n(1<<32), 0)
		return os.Chtimes(out, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

type snapshot struct {
	dist     string
	manifest *manifest.Manifest
}

// releaseSnapshot runs `release --snapshot` under a umask and time zone.
func releaseSnapshot(t *testing.T, cfg, dist, umask, tz string) snapshot {
	t.Helper()
	cmd := exec.Command("sh", "-c", "umask "+umask+" && exec \"$0\" \"$@\"", bin, "--config", cfg, "--dist", dist, "release", "--snapshot")
	cmd.Env = append(os.Environ(), "TZ="+tz, "GITHUB_SHA="+fixedCommit, "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("release --snapshot: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != filepath.Join(dist, "manifest.json") {
		t.Errorf("stdout = %q, want the manifest's path", got)
	}
	data, err := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{dist: dist, manifest: m}
}

// The core promise: the same source gives the same bytes, whoever builds it.
func TestSnapshotIsReproducible(t *testing.T) {
	skipShort(t)
	a := t.TempDir()
	b := t.TempDir()
	copyExample(t, filepath.Join(a, "src"), 0o644, 0o755)
	copyExample(t, filepath.Join(b, "src"), 0o600, 0o700)
	s1 := releaseSnapshot(t, filepath.Join(a, "src", "fwrelease.yaml"), filepath.Join(a, "dist"), "022", "UTC")
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
		if art.Images == nil || other.Images == nil || !slices.Equal(art.Layers, other.Layers) ||
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
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	for _, art := range s.manifest.Artifacts {
		t.Run(art.Target.ID, func(t *testing.T) {
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

// pythonDir makes a directory whose python3 and python3.X are the given
// version.
func pythonDir(t *testing.T, base, version string) string {
	t.Helper()
	dir := filepath.Join(base, "python"+version)
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"python3", "python" + version} {
		if err := os.Symlink(python(t, version), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The layout of docs/targets-and-tarball.md, read back by fwrelease's own safe reader and
// checked against MANIFEST.json.
func TestSnapshotTarballLayout(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
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

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
