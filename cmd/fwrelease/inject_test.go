package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

// toolbox makes a PATH holding only the named tools and the target's
// python3, as a minimal base image would.
func toolbox(t *testing.T, python string, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s is needed by this test: %v", tool, err)
		}
		os.Symlink(p, filepath.Join(dir, tool))
	}
	os.Symlink(python, filepath.Join(dir, "python3"))
	return dir
}

// What the start script needs besides a downloader and sha256sum; coreutils,
// findutils, sed, tar and gzip are in every Debian and Ubuntu base image.
var baseTools = []string{"sh", "bash", "tar", "gzip", "mktemp", "cat", "rm", "mv", "cp", "mkdir", "cut", "sleep",
	"chmod", "touch", "ls", "tail", "sort", "find", "sed", "tr", "dirname", "mkfifo", "head", "tee", "xargs", "timeout", "getconf"}

// images are the downloaders a base image may have: curl, else wget, else
// only python3 (and then no sha256sum either, as in python:3.X-slim).
var images = map[string][]string{
	"curl":   append([]string{"curl", "sha256sum"}, baseTools...),
	"wget":   append([]string{"wget", "sha256sum"}, baseTools...),
	"python": baseTools,
}

// container runs one start of a container: the script by a shell, with
// only the image's tools on PATH.
type container struct {
	t        *testing.T
	rel      *httpsRel
	shell    string // /bin/bash or /bin/dash
	image    string // a key of images
	fwDir    string
	cacheDir string
	url      string // --url, or several separated by spaces; default: the manifest's
}

// script renders the start script for a target with fwrelease inject.
func (c container) script(target string) string {
	c.t.Helper()
	args := []string{"inject", "--manifest", c.rel.manifest, "--key", c.rel.pub, "--target", target, "--fw-dir", c.fwDir, "--cache-dir", c.cacheDir}
	for _, u := range strings.Fields(c.url) {
		args = append(args, "--url", u)
	}
	r := run(c.t, c.t.TempDir(), c.rel.env(), args...)
	if r.code != 0 {
		c.t.Fatalf("inject: exit %d: %s", r.code, r.stderr)
	}
	return r.stdout
}

func (c container) start(target, python string) (string, error) {
	c.t.Helper()
	script := c.script(target)
	cmd := exec.Command(c.shell, "-c", script)
	cmd.Env = append([]string{"PATH=" + toolbox(c.t, python, images[c.image]...), "FLASH_WORKER_SELFTEST=1", "HOME=" + c.t.TempDir()}, c.rel.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func booted(py string) string { return "flash-worker 1.2.0 ok python " + py + "\n" }

// listDir names what is in dir, dotfiles included.
func listDir(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// The start script in each shell and each kind of image: containers of
// two targets sharing one volume, restarts, tampering, killed containers,
// and downloads that must never run.
func TestStartScript(t *testing.T) {
	t.Parallel()
	rel := httpsRelease(t)
	py310, py311 := python(t, "3.10"), python(t, "3.11")
	a310, _ := rel.m.Find("py3.10-cpu-linux-x86_64")
	a311, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	for _, shell := range []string{"/bin/bash", "/bin/dash"} {
		for _, image := range []string{"curl", "wget", "python"} {
			t.Run(filepath.Base(shell)+"/"+image, func(t *testing.T) {
				t.Parallel()
				srv := newReleaseServer(t, rel.dir)
				vol := filepath.Join(t.TempDir(), "runpod-volume")
				os.Mkdir(vol, 0o755)
				cache := filepath.Join(vol, ".flash-worker")
				blobs := filepath.Join(cache, "sha256")
				blob310 := filepath.Join(blobs, a310.SHA256+".tar.gz")
				tar310 := filepath.Join(blobs, strings.TrimPrefix(a310.DiffID, "sha256:")+".tar")
				tar311 := filepath.Join(blobs, strings.TrimPrefix(a311.DiffID, "sha256:")+".tar")
				newContainer := func() container {
					return container{t: t, rel: rel, shell: shell, image: image,
						fwDir: filepath.Join(t.TempDir(), "opt", "flash-worker"), cacheDir: cache}
				}
				var last string // what the last expectBoot printed
				expectBoot := func(what string, c container, target, py string) {
					t.Helper()
					c.url = srv.URL + "/" + map[string]string{"3.10": a310.File, "3.11": a311.File}[py]
					out, err := c.start(target, map[string]string{"3.10": py310, "3.11": py311}[py])
					if err != nil || !strings.HasSuffix(out, booted(py)) {
						t.Fatalf("%s: %v\n%s", what, err, out)
					}
					last = out
				}
				// The one telemetry line at exec: the cache outcome, bytes, times.
				expectTelemetry := func(t *testing.T, what, want string) {
					t.Helper()
					if !regexp.MustCompile(`(?m)^flash-worker: 1\.2\.0 cache=` + want + `( |$)`).MatchString(last) {
						t.Errorf("%s: no telemetry line \"cache=%s\":\n%s", what, want, last)
					}
				}

				// py3.10, then py3.11, then py3.10 on one volume: each its own.
				expectBoot("py3.10 cold", newContainer(), "py3.10-cpu-linux-x86_64", "3.10")
				expectTelemetry(t, "py3.10 cold", fmt.Sprintf("download bytes=%d download_ms=[0-9]+ verify_ms=[0-9]+ extract_ms=[0-9]+", a310.Size))
				expectBoot("py3.11 cold", newContainer(), "py3.11-cpu-linux-x86_64", "3.11")
				// Each keeps its tarball and its uncompressed tar stream.
				want := []string{a310.SHA256 + ".tar.gz", filepath.Base(tar310), a311.SHA256 + ".tar.gz", filepath.Base(tar311)}
				slices.Sort(want)
				if got := listDir(blobs); !slices.Equal(got, want) { // ReadDir sorts by name
					t.Errorf("two targets should leave %v, the volume holds %v", want, got)
				}
				if got, _ := archive.FileSHA256(tar310); "sha256:"+got != a310.DiffID {
					t.Errorf("the volume's tar stream has sha256 %s, the manifest's diff_id is %s", got, a310.DiffID)
				}
				// A hit takes the tar stream (no decompressing): with the
				// tarball away, the start still downloads nothing.
				before := srv.downloads.Load()
				srv.mode.Store("missing")
				third := newContainer()
				os.Rename(blob310, vol+".tarball")
				expectBoot("py3.10 from the volume", third, "py3.10-cpu-linux-x86_64", "3.10")
				expectTelemetry(t, "py3.10 from the volume", "volume bytes=0 download_ms=[0-9]+ verify_ms=[0-9]+ extract_ms=[0-9]+")
				os.Rename(vol+".tarball", blob310)
				if n := srv.downloads.Load() - before; n != 0 {
					t.Errorf("a start with the tar stream on the volume downloaded %d times", n)
				}
				expectBoot("py3.10 from the volume's tarball", newContainer(), "py3.10-cpu-linux-x86_64", "3.10")
				if n := srv.downloads.Load() - before; n != 0 {
					t.Errorf("a start with the blob on the volume downloaded %d times", n)
				}

				// A restarted container reuses its tree, even without the volume.
				os.Rename(vol, vol+".away")
				expectBoot("restart", third, "py3.10-cpu-linux-x86_64", "3.10")
				expectTelemetry(t, "restart", "restart bytes=0")
				os.Rename(vol+".away", vol)
				if m, _ := os.ReadFile(filepath.Join(third.fwDir, ".fw-sha256")); strings.TrimSpace(string(m)) != a310.SHA256 {
					t.Errorf("the marker in --fw-dir is %q", m)
				}
				// ... but not a tree whose marker names other bytes.
				os.WriteFile(filepath.Join(third.fwDir, ".fw-sha256"), []byte(a311.SHA256+"\n"), 0o644)
				os.WriteFile(filepath.Join(third.fwDir, "bootstrap.sh"), []byte("#!/bin/sh\necho stale tree ran\n"), 0o755)
				expectBoot("restart with a stale tree", third, "py3.10-cpu-linux-x86_64", "3.10")

				// A tar stream tampered on the volume (here: another target's)
				// is removed, never run; the tarball beside it serves.
				srv.mode.Store("")
				otherTar, _ := os.ReadFile(tar311)
				os.WriteFile(tar310, otherTar, 0o644)
				before = srv.downloads.Load()
				expectBoot("tampered tar stream", newContainer(), "py3.10-cpu-linux-x86_64", "3.10")
				if _, err := os.Stat(tar310); err == nil {
					t.Errorf("the tampered tar stream was left on the volume")
				}
				if !strings.Contains(last, filepath.Base(tar310)+" is not the release; replacing it") {
					t.Errorf("tampered tar stream: no message:\n%s", last)
				}
				if n := srv.downloads.Load() - before; n != 0 {
					t.Errorf("with the tarball on the volume, a tampered tar stream took %d downloads", n)
				}
				// A blob tampered on the volume (here: another target's valid
				// tarball) is replaced, never run.
				other, _ := os.ReadFile(filepath.Join(rel.dir, a311.File))
				os.WriteFile(blob310, other, 0o644)
				before = srv.downloads.Load()
				expectBoot("tampered blob", newContainer(), "py3.10-cpu-linux-x86_64", "3.10")
				if got, _ := archive.FileSHA256(blob310); got != a310.SHA256 {
					t.Errorf("the tampered blob was not replaced: sha256 %s", got)
				}
				if got, _ := archive.FileSHA256(tar310); "sha256:"+got != a310.DiffID {
					t.Errorf("the download did not keep its tar stream: sha256 %q", got)
				}
				if n := srv.downloads.Load() - before; n != 1 {
					t.Errorf("replacing the tampered blob took %d downloads, want 1", n)
				}

				// A killed container's leftovers: a half-written blob under its
				// temporary name, an old one, and a temp dir beside --fw-dir.
				fresh := newContainer()
				stale := filepath.Join(blobs, ".tmp.killed1")
				recent := filepath.Join(blobs, ".tmp.inflight")
				os.WriteFile(stale, other[:len(other)/2], 0o600)
				os.WriteFile(recent, other[:10], 0o600)
				hour := time.Now().Add(-time.Hour)
				os.Chtimes(stale, hour, hour)
				os.MkdirAll(fresh.fwDir+".tmp.killed2/t", 0o755)
				expectBoot("after a killed container", fresh, "py3.10-cpu-linux-x86_64", "3.10")
				if _, err := os.Stat(stale); err == nil {
					t.Errorf("an hour-old temporary blob was not cleaned")
				}
				if _, err := os.Stat(recent); err != nil {
					t.Errorf("a blob another container is writing now was removed")
				}
				os.Remove(recent)
				if got := listDir(filepath.Dir(fresh.fwDir)); len(got) != 1 {
					t.Errorf("beside --fw-dir: %v, want only the tree", got)
				}

				// https -> https redirects are followed (GitHub's downloads).
				c := newContainer()
				c.url = srv.URL + "/hop/" + a310.File
				if out, err := c.start("py3.10-cpu-linux-x86_64", py310); err != nil || !strings.HasSuffix(out, booted("3.10")) {
					t.Errorf("https redirect: %v\n%s", err, out)
				}

				// Downloads that must never run, with an empty volume.
				for _, mode := range []string{"swap", "corrupt", "truncate", "missing", "downgrade"} {
					os.RemoveAll(vol)
					os.Mkdir(vol, 0o755)
					srv.mode.Store(mode)
					srv.swapWith = filepath.Join(rel.dir, a311.File)
					c := newContainer()
					c.url = srv.URL + "/" + a310.File
					if mode == "downgrade" {
						srv.mode.Store("")
						c.url = srv.URL + "/downgrade/" + a310.File
					}
					out, err := c.start("py3.10-cpu-linux-x86_64", py310)
					if err == nil || strings.Contains(out, " ok python ") || strings.Contains(out, "stale tree ran") {
						t.Errorf("%s: exit %v, and it ran:\n%s", mode, err, out)
					}
					if !strings.Contains(out, "could not download flash-worker 1.2.0") {
						t.Errorf("%s: no clear message:\n%s", mode, out)
					}
					if got := listDir(filepath.Dir(c.fwDir)); len(got) != 0 {
						t.Errorf("%s: left %v beside --fw-dir", mode, got)
					}
					if got := listDir(blobs); len(got) != 0 {
						t.Errorf("%s: left %v in the volume cache", mode, got)
					}
				}
				if n := srv.plainHits.Load(); n != 0 {
					t.Errorf("a redirect to plain http was followed (%d requests)", n)
				}
			})
		}
	}
}

// python3's download over https imports none of the modules that cost a
// fresh container its compiling (python:slim ships no bytecode): not ssl
// or socket (it speaks through _ssl and _socket), not the idna codec (a
// host given to getaddrinfo as str), not urllib or hashlib.
func TestStartScriptPythonImports(t *testing.T) {
	t.Parallel()
	rel := httpsRelease(t)
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	srv := newReleaseServer(t, rel.dir)
	dir := t.TempDir()
	imports := filepath.Join(dir, "imports")
	wrapper := filepath.Join(dir, "python3-importtime")
	py := python(t, "3.11")
	os.WriteFile(wrapper, []byte("#!/bin/sh\n[ \"$3\" != - ] || exec "+py+" -X importtime \"$@\" 2>>"+imports+"\nexec "+py+" \"$@\"\n"), 0o755)
	c := container{t: t, rel: rel, shell: "/bin/dash", image: "python", fwDir: filepath.Join(dir, "opt", "flash-worker"),
		cacheDir: filepath.Join(dir, "volume", ".flash-worker"), url: srv.URL + "/hop/" + a.File}
	out, err := c.start("py3.11-cpu-linux-x86_64", wrapper)
	if err != nil || !strings.HasSuffix(out, booted("3.11")) {
		t.Fatalf("cold start: %v\n%s", err, out)
	}
	log, _ := os.ReadFile(imports)
	var seen []string
	for _, line := range strings.Split(string(log), "\n") {
		if f := strings.Split(line, "|"); len(f) == 3 && strings.HasPrefix(line, "import time:") {
			seen = append(seen, strings.TrimSpace(f[2]))
		}
	}
	if !slices.Contains(seen, "_ssl") {
		t.Fatalf("the download did not go through _ssl; imported: %v", seen)
	}
	for _, m := range []string{"ssl", "socket", "encodings.idna", "re", "enum", "urllib.request", "hashlib"} {
		if slices.Contains(seen, m) {
			t.Errorf("the download imported %s; imported: %v", m, seen)
		}
	}
}

// Five containers starting at once on one empty volume all boot, and
// leave exactly one blob and no temporary files.
func TestStartScriptConcurrentContainers(t *testing.T) {
	t.Parallel()
	rel := httpsRelease(t)
	py := python(t, "3.11")
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	for _, image := range []string{"curl", "python"} {
		t.Run(image, func(t *testing.T) {
			srv := newReleaseServer(t, rel.dir)
			cache := filepath.Join(t.TempDir(), "volume", ".flash-worker")
			os.MkdirAll(filepath.Dir(cache), 0o755)
			var wg sync.WaitGroup
			outs := make([]string, 5)
			errs := make([]error, 5)
			for i := range outs {
				c := container{t: t, rel: rel, shell: "/bin/dash", image: image, url: srv.URL + "/" + a.File,
					fwDir: filepath.Join(t.TempDir(), "opt", "flash-worker"), cacheDir: cache}
				script := c.script(a.Target.ID)
				path := toolbox(t, py, images[image]...)
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(c.shell, "-c", script)
					cmd.Env = append([]string{"PATH=" + path, "FLASH_WORKER_SELFTEST=1"}, rel.env()...)
					out, err := cmd.CombinedOutput()
					outs[i], errs[i] = string(out), err
				}()
			}
			wg.Wait()
			for i := range outs {
				if errs[i] != nil || !strings.HasSuffix(outs[i], booted("3.11")) {
					t.Errorf("container %d: %v\n%s", i, errs[i], outs[i])
				}
			}
			want := []string{a.SHA256 + ".tar.gz", strings.TrimPrefix(a.DiffID, "sha256:") + ".tar"}
			slices.Sort(want)
			if got := listDir(filepath.Join(cache, "sha256")); !slices.Equal(got, want) { // ReadDir sorts by name
				t.Errorf("the volume holds %v, want exactly %v", got, want)
			}
		})
	}
}

// A read-only or full volume costs the cache, never the start. Each runs
// in a mount namespace of its own, with the volume remounted read-only or
// a tiny tmpfs; that needs root (CI runs as root) or user namespaces.
func TestStartScriptReadOnlyAndFullVolume(t *testing.T) {
	t.Parallel()
	rel := httpsRelease(t)
	py := python(t, "3.11")
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	unshare := []string{"/usr/bin/unshare", "-m"}
	if os.Geteuid() != 0 {
		unshare = append(unshare, "-r")
	}
	if out, err := exec.Command(unshare[0], append(unshare[1:], "/bin/true")...).CombinedOutput(); err != nil {
		t.Fatalf("this test needs a mount namespace (run as root): %v %s", err, out)
	}
	good, _ := os.ReadFile(filepath.Join(rel.dir, a.File))
	tests := []struct {
		name, mount string
		blob        bool // a good blob is on the volume already
		downloads   int32
	}{
		{"read-only volume with the blob", "mount --bind $V $V && mount -o remount,bind,ro $V", true, 0},
		{"read-only empty volume", "mount --bind $V $V && mount -o remount,bind,ro $V", false, 1},
		{"full volume", "mount -t tmpfs -o size=8k tmpfs $V", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newReleaseServer(t, rel.dir)
			vol := filepath.Join(t.TempDir(), "runpod-volume")
			cache := filepath.Join(vol, ".flash-worker")
			os.MkdirAll(filepath.Join(cache, "sha256"), 0o755)
			if tt.blob {
				os.WriteFile(filepath.Join(cache, "sha256", a.SHA256+".tar.gz"), good, 0o644)
			}
			c := container{t: t, rel: rel, shell: "/bin/bash", image: "curl", url: srv.URL + "/" + a.File,
				fwDir: filepath.Join(t.TempDir(), "opt", "flash-worker"), cacheDir: cache}
			script := c.script(a.Target.ID)
			inner := strings.ReplaceAll(tt.mount, "$V", vol) + ` && exec env PATH="$FW_PATH" /bin/bash -c "$FW_SCRIPT"`
			cmd := exec.Command(unshare[0], append(unshare[1:], "/bin/sh", "-c", inner)...)
			cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FW_PATH=" + toolbox(t, py, images["curl"]...),
				"FW_SCRIPT=" + script, "FLASH_WORKER_SELFTEST=1"}, rel.env()...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil || !strings.HasSuffix(out.String(), booted("3.11")) {
				t.Fatalf("start: %v\n%s", err, out.String())
			}
			if n := srv.downloads.Load(); n != tt.downloads {
				t.Errorf("%d downloads, want %d", n, tt.downloads)
			}
			if got := listDir(filepath.Dir(c.fwDir)); len(got) != 1 {
				t.Errorf("beside --fw-dir: %v", got)
			}
		})
	}
}

func TestInjectRefuses(t *testing.T) {
	t.Parallel()
	rel := httpsRelease(t)
	dir := t.TempDir()
	const id = "py3.11-cpu-linux-x86_64"
	inject := func(manifest string, extra ...string) result {
		return run(t, dir, rel.env(), append([]string{"inject", "--manifest", manifest, "--target", id}, extra...)...)
	}
	if r := inject(rel.manifest, "--key", rel.pub, "--docker-args"); r.code != 0 || !strings.HasPrefix(r.stdout, "bash -c 'set -euf\n") {
		t.Fatalf("inject --docker-args: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	script := inject(rel.manifest, "--key", rel.pub).stdout
	var argv []string
	if r := run(t, dir, rel.env(), "--json", "inject", "--manifest", rel.manifest, "--target", id, "--key", rel.pub); json.Unmarshal([]byte(r.stdout), &argv) != nil ||
		len(argv) != 3 || argv[0] != "bash" || argv[1] != "-c" || argv[2] != script {
		t.Errorf("inject --json: exit %d, %.80q; want [\"bash\", \"-c\", script]", r.code, r.stdout)
	}

	// A manifest without its signature, with a tampered byte, or signed by
	// someone else is never turned into a start script.
	unsigned := filepath.Join(dir, "unsigned.json")
	data, _ := os.ReadFile(rel.manifest)
	os.WriteFile(unsigned, data, 0o644)
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, bytes.Replace(data, []byte(`"size": `), []byte(`"size": 1`), 1), 0o644)
	bundle, _ := os.ReadFile(rel.manifest + ".sigstore.json")
	os.WriteFile(tampered+".sigstore.json", bundle, 0o644)
	snapshotPub := filepath.Join(rel.dir, "snapshot.pub")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no trust given", []string{rel.manifest}, "say whom to trust"},
		{"unsigned", []string{unsigned, "--key", rel.pub}, "manifest's signature"},
		{"tampered", []string{tampered, "--key", rel.pub}, "not using " + tampered},
		{"another key", []string{rel.manifest, "--key", snapshotPub}, "not using"},
		{"plain http --url", []string{rel.manifest, "--key", rel.pub, "--url", "http://127.0.0.1:1/x.tar.gz"}, "plain http; pass --allow-insecure"},
		{"option as --url", []string{rel.manifest, "--key", rel.pub, "--url", "-K/etc/passwd"}, "leading -"},
		{"quote in --url", []string{rel.manifest, "--key", rel.pub, "--url", "https://x/a'b"}, "cannot be put in a start script"},
		{"relative --fw-dir", []string{rel.manifest, "--key", rel.pub, "--fw-dir", "fw"}, "--fw-dir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := inject(tt.args[0], tt.args[1:]...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %s; want an error saying %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	// With --allow-insecure, loopback http is fine (tests, local mirrors).
	if r := run(t, dir, rel.env(), "--allow-insecure", "inject", "--manifest", rel.manifest, "--key", rel.pub, "--target", id, "--url", "http://127.0.0.1:1/x.tar.gz"); r.code != 0 {
		t.Errorf("--allow-insecure with a loopback --url: exit %d, %s", r.code, r.stderr)
	}
	r := run(t, dir, rel.env(), "inject", "--manifest", rel.manifest, "--key", rel.pub, "--target", "py3.9-cpu-linux-x86_64")
	if r.code != 2 || !strings.Contains(r.stderr, id) {
		t.Errorf("unknown target: exit %d, %s", r.code, r.stderr)
	}
	// --layers: the layer files' https URLs; a snapshot's layers are
	// file:// only, nothing a container can fetch, and the error names the
	// target.
	a, _ := rel.m.Find(id)
	if r := inject(rel.manifest, "--key", rel.pub, "--layers"); r.code != 0 || r.stdout == script || !strings.Contains(r.stdout, a.Layers[0].URLs[0]) {
		t.Errorf("inject --layers: exit %d, %s", r.code, r.stderr)
	}
	snap := sharedSnapshot(t)
	if r := run(t, dir, nil, "inject", "--manifest", filepath.Join(snap.dist, "manifest.json"), "--key", filepath.Join(snap.dist, "snapshot.pub"), "--target", id, "--layers"); r.code == 0 || !strings.Contains(r.stderr, "target "+id) || !strings.Contains(r.stderr, "no usable URL") {
		t.Errorf("inject --layers of a snapshot: exit %d, %s", r.code, r.stderr)
	}
}
