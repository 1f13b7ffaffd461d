package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// shim puts a script in place of tool in a toolbox: it runs act (sh, with
// the tool's arguments as "$@") and then the real tool, as a co-tenant
// sharing the volume could act at that moment of the start.
func shim(t *testing.T, box, tool, act string) {
	t.Helper()
	real, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is needed by this test: %v", tool, err)
	}
	os.Remove(filepath.Join(box, tool))
	script := "#!/bin/sh\n" + act + "\nexec " + real + ` "$@"` + "\n"
	if err := os.WriteFile(filepath.Join(box, tool), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// dirState records every name and file content under dir, to tell whether
// a start wrote, removed or renamed anything there.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		data := ""
		if fi.Mode().IsRegular() {
			d, _ := os.ReadFile(p)
			data = string(d)
		}
		fmt.Fprintf(&b, "%s %v %q %d\n", p, fi.Mode(), data, fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

// hostileStart is one start of a container next to a hostile co-tenant: the
// script runs with the shims, and must boot within limit.
type hostileStart struct {
	c     container // of a py3.11 target
	py    string    // its interpreter
	box   string
	env   []string
	limit time.Duration
}

func (h hostileStart) run(t *testing.T, target string) (string, time.Duration) {
	t.Helper()
	script := h.c.script(target)
	ctx, cancel := context.WithTimeout(context.Background(), h.limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.c.shell, "-c", script)
	// Past the limit, the whole start goes (a tool blocked on a FIFO holds
	// the output open), and the test fails instead of waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = append(append([]string{"PATH=" + h.box, "FLASH_WORKER_SELFTEST=1", "HOME=" + t.TempDir()}, h.env...), h.c.rel.env()...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil || !strings.HasSuffix(string(out), booted("3.11")) {
		t.Fatalf("the start did not boot (took %v, limit %v): %v\n%s", took, h.limit, err, out)
	}
	return string(out), took
}

// Shim actions of a co-tenant (see shim), in the environment the test
// gives them: VICTIM, a local directory of the container; CACHE, the
// volume's cache directory; BLOB, the release's blob name.
const swapTemp = `for f in "$CACHE"/sha256/.tmp.*; do [ -f "$f" ] && [ ! -h "$f" ] && mv "$f" "$f.moved" && ln -s "$VICTIM/target" "$f"; done 2>/dev/null`

// swapBlob replaces the blob, when the tool is about to read it, by what
// maker (mkfifo, ln -s TARGET) makes.
func swapBlob(maker string) string {
	return `for a; do case $a in *"$BLOB") rm -f "$a"; ` + maker + ` "$a" ;; esac; done`
}

// A co-tenant that can write the shared volume attacks the cache before the
// start and between its steps (through shims of the tools the script calls
// at that moment). Each attack must cost at most the cache: the container
// boots, nothing outside the cache is written or removed, and the next start
// on the same volume boots too.
func TestStartScriptHostileVolume(t *testing.T) {
	rel := httpsRelease(t)
	py := python(t, "3.11")
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	good, _ := os.ReadFile(filepath.Join(rel.dir, a.File))
	blob := a.SHA256 + ".tar.gz"
	randomBlob := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return hex.EncodeToString(b) + ".tar.gz"
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, blobs, victim string) // before the start; blobs is <cache>/sha256
		shims   map[string]string                        // tool -> act, while the script runs
		limit   time.Duration
		check   func(t *testing.T, out, blobs string)
	}{
		{name: "sha256 is a symlink to a local directory", prepare: func(t *testing.T, blobs, victim string) {
			os.MkdirAll(filepath.Dir(blobs), 0o755)
			os.Symlink(victim, blobs)
		}, check: func(t *testing.T, out, _ string) {
			if !strings.Contains(out, "not using the cache") {
				t.Errorf("the refusal is not said:\n%s", out)
			}
		}},
		{name: "the cache directory is a symlink to a local directory", prepare: func(t *testing.T, blobs, victim string) {
			os.MkdirAll(filepath.Join(victim, "sha256"), 0o755)
			os.Symlink(victim, filepath.Dir(blobs))
		}},
		{name: "sha256 becomes a symlink as the script creates it", shims: map[string]string{
			"mkdir": `case "$*" in *sha256*) cd "$CACHE" && { mv sha256 sha256.real; ln -s "$VICTIM" sha256; } 2>/dev/null; cd - >/dev/null ;; esac`,
		}},
		// The blob's temporary name is .tmp.<the private directory's random
		// part>.<hex>: a co-tenant that learned it as the directory is made.
		{name: "the temporary name is taken by a symlink once chosen", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(blobs, 0o755)
		}, shims: map[string]string{
			"mkdir": `for d; do case $d in *.t) ;; *.tmp.*) ln -s "$VICTIM/target" "$CACHE/sha256/.tmp.${d##*.}.${BLOB%%.*}" ;; esac; done`,
		}, check: func(t *testing.T, _, blobs string) {
			if !slices.ContainsFunc(listDir(blobs), func(n string) bool { return strings.HasPrefix(n, ".tmp.") }) {
				t.Errorf("the symlink on the temporary name was not made, so this case tried nothing: %v", listDir(blobs))
			}
		}},
		{name: "the temporary file is swapped for a symlink before it is written", shims: map[string]string{
			"cp": swapTemp, "tee": swapTemp, "chmod": swapTemp,
		}},
		{name: "the blob's name becomes a symlink to a local directory before the rename", shims: map[string]string{
			"mv": `for a; do l=$a; done; case $l in *.tar.gz|*.tar) rm -f "$l"; ln -s "$VICTIM" "$l" ;; esac`,
		}},
		{name: "a directory where the blob goes", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(filepath.Join(blobs, blob, "inside"), 0o755)
		}},
		{name: "a directory where the tar stream goes", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(filepath.Join(blobs, strings.TrimPrefix(a.DiffID, "sha256:")+".tar", "inside"), 0o755)
		}},
		{name: "junk in sha256", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(filepath.Join(blobs, ".tmp.dir"), 0o755)
			os.MkdirAll(filepath.Join(blobs, randomBlob()), 0o755)
			syscall.Mkfifo(filepath.Join(blobs, ".tmp.fifo"), 0o644)
			syscall.Mkfifo(filepath.Join(blobs, randomBlob()), 0o644)
			os.Symlink("/etc/passwd", filepath.Join(blobs, randomBlob()))
			hour := time.Now().Add(-time.Hour)
			for _, n := range []string{".tmp.dir", ".tmp.fifo"} {
				os.Chtimes(filepath.Join(blobs, n), hour, hour)
			}
		}},
		{name: "the blob is a FIFO", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(blobs, 0o755)
			syscall.Mkfifo(filepath.Join(blobs, blob), 0o644)
		}},
		{name: "the blob becomes a FIFO as it is read", limit: 40 * time.Second, prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(blobs, 0o755)
			os.WriteFile(filepath.Join(blobs, blob), good, 0o644)
		}, shims: map[string]string{
			"cat": swapBlob("mkfifo"), "cp": swapBlob("mkfifo"), "head": swapBlob("mkfifo"),
		}},
		// A short limit: a reader without a bound fills the disk with zeros.
		{name: "the blob becomes a link to an endless file as it is read", limit: 8 * time.Second, prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(blobs, 0o755)
			os.WriteFile(filepath.Join(blobs, blob), good, 0o644)
		}, shims: map[string]string{
			"cat": swapBlob("ln -s /dev/zero"), "cp": swapBlob("ln -s /dev/zero"), "head": swapBlob("ln -s /dev/zero"),
		}},
		{name: "30000 names in sha256", prepare: func(t *testing.T, blobs, _ string) {
			os.MkdirAll(blobs, 0o755)
			old := time.Now().Add(-time.Hour)
			for i := 0; i < 30000; i++ {
				name := fmt.Sprintf("junk-%05d", i)
				if i%3 == 0 {
					name = randomBlob()
				}
				p := filepath.Join(blobs, name)
				os.WriteFile(p, nil, 0o644)
				os.Chtimes(p, old, old)
			}
		}, check: func(t *testing.T, _, blobs string) {
			var pattern, junk int
			for _, n := range listDir(blobs) {
				if strings.HasPrefix(n, "junk-") {
					junk++
				} else if strings.HasSuffix(n, ".tar.gz") && len(n) == 71 {
					pattern++
				}
			}
			if pattern != 3 || junk != 20000 {
				t.Errorf("after pruning: %d blobs (want 3: this release's and two more, beside its tar stream) and %d other names (want all 20000 left)", pattern, junk)
			}
			// The release's own files are the newest, however many names
			// find hands on in batches.
			for _, own := range []string{blob, strings.TrimPrefix(a.DiffID, "sha256:") + ".tar"} {
				if _, err := os.Stat(filepath.Join(blobs, own)); err != nil {
					t.Errorf("pruning took the release's own %s", own)
				}
			}
		}},
	}
	for _, shell := range []string{"/bin/bash", "/bin/dash"} {
		for _, tt := range tests {
			t.Run(filepath.Base(shell)+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv := newReleaseServer(t, rel.dir)
				root := t.TempDir()
				vol, victim := filepath.Join(root, "runpod-volume"), filepath.Join(root, "local")
				os.Mkdir(vol, 0o755)
				os.Mkdir(victim, 0o755)
				os.WriteFile(filepath.Join(victim, "target"), []byte("the victim's file\n"), 0o644)
				for i := 0; i < 4; i++ { // names the prune would take
					os.WriteFile(filepath.Join(victim, strings.Repeat(fmt.Sprint(i), 64)+".tar.gz"), nil, 0o644)
				}
				blobs := filepath.Join(vol, ".flash-worker", "sha256")
				if tt.prepare != nil {
					tt.prepare(t, blobs, victim)
				}
				before := dirState(t, victim)
				c := container{t: t, rel: rel, shell: shell, image: "curl", url: srv.URL + "/" + a.File,
					fwDir: filepath.Join(root, "opt", "flash-worker"), cacheDir: filepath.Dir(blobs)}
				// ln for the co-tenant's shims (the start script needs none).
				h := hostileStart{c: c, py: py, box: toolbox(t, py, append(images["curl"], "ln")...), limit: 20 * time.Second,
					env: []string{"VICTIM=" + victim, "CACHE=" + filepath.Dir(blobs), "BLOB=" + blob}}
				if tt.limit != 0 {
					h.limit = tt.limit
				}
				for tool, act := range tt.shims {
					shim(t, h.box, tool, act)
				}
				out, took := h.run(t, a.Target.ID)
				t.Logf("the start took %v", took)
				if tt.check != nil {
					tt.check(t, out, blobs)
				}
				if after := dirState(t, victim); after != before {
					t.Errorf("the start changed a local directory:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				// The next container on the same volume, with no co-tenant
				// acting, boots too.
				next := hostileStart{c: c, py: py, box: toolbox(t, py, images["curl"]...), limit: 20 * time.Second}
				next.c.fwDir = filepath.Join(root, "opt2", "flash-worker")
				next.run(t, a.Target.ID)
				if after := dirState(t, victim); after != before {
					t.Errorf("the next start changed a local directory:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
	}
}

// mirrorServer serves what a broken or hostile mirror sends: an endless
// body, with or without a length, and a body that drips. The endless body
// is a gzip stream that never ends, of a tar member that never ends, of
// random bytes: every consumer in the script's pipe (gzip, tar) keeps
// reading it, so only the script's own bound on the download stops it.
type mirrorServer struct {
	*httptest.Server
	sent atomic.Int64
}

// wire counts in sent what is written to w.
type wire struct {
	w    io.Writer
	sent *atomic.Int64
}

func (c wire) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

func newMirrorServer(t *testing.T) *mirrorServer {
	m := &mirrorServer{}
	m.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		switch r.URL.Path {
		case "/endless-length":
			w.Header().Set("Content-Length", "1000000000000")
			fallthrough
		case "/endless":
			gz, _ := gzip.NewWriterLevel(wire{w, &m.sent}, gzip.BestSpeed)
			tw := tar.NewWriter(gz)
			tw.WriteHeader(&tar.Header{Name: "flash-worker/endless", Mode: 0o644, Size: 1 << 40, Typeflag: tar.TypeReg})
			for r.Context().Err() == nil {
				rand.Read(chunk)
				if _, err := tw.Write(chunk); err != nil {
					return
				}
				if gz.Flush() != nil {
					return
				}
			}
		case "/drip": // chunked, so that no length gives it away
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk[:1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				m.sent.Add(1)
				time.Sleep(2 * time.Second)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

// Downloads are bounded in size and time: a mirror that sends an endless
// body (with a huge length or chunked) is cut at the release's size, and
// one that drips is given up at the deadline; the start goes on to the next
// URL and boots. With each downloader, in bash and dash.
func TestStartScriptBoundedDownloads(t *testing.T) {
	rel := httpsRelease(t)
	py := python(t, "3.11")
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	for _, shell := range []string{"/bin/bash", "/bin/dash"} {
		for _, image := range []string{"curl", "wget", "python"} {
			for _, path := range []string{"/endless", "/endless-length", "/drip"} {
				t.Run(filepath.Base(shell)+"/"+image+path, func(t *testing.T) {
					t.Parallel()
					srv, mirror := newReleaseServer(t, rel.dir), newMirrorServer(t)
					root := t.TempDir()
					c := container{t: t, rel: rel, shell: shell, image: image,
						fwDir: filepath.Join(root, "opt", "flash-worker"), cacheDir: filepath.Join(root, "vol", ".flash-worker")}
					// Two --url flags: the hostile mirror first.
					c.url = mirror.URL + path + " " + srv.URL + "/" + a.File
					limit := 15 * time.Second
					if path == "/drip" {
						limit = 20*time.Second + 25*time.Second // the script's deadline for this size, and slack
					}
					h := hostileStart{c: c, py: py, box: toolbox(t, py, images[image]...), limit: limit}
					out, took := h.run(t, a.Target.ID)
					t.Logf("booted after %v; the mirror sent %d bytes", took, mirror.sent.Load())
					if n := mirror.sent.Load(); n > a.Size+8<<20 {
						t.Errorf("the mirror sent %d bytes before the script stopped reading; the release is %d", n, a.Size)
					}
					if !strings.Contains(out, mirror.URL+path) {
						t.Errorf("the failed mirror is not named:\n%s", out)
					}
				})
			}
		}
	}
}

// hostileTarball is what a compromised mirror could serve: members that try
// to leave the extraction directory by name (.. and absolute), through a
// symlink extracted first, and through hard links to files outside, which a
// later member of the same name would write through.
func hostileTarball(t *testing.T, outside string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(h tar.Header, data string) {
		h.Mode, h.Size = 0o755, int64(len(data))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		tw.WriteHeader(&h)
		tw.Write([]byte(data))
	}
	add(tar.Header{Name: "flash-worker/bootstrap.sh"}, "#!/bin/sh\necho the unverified tree ran\n")
	add(tar.Header{Name: "flash-worker/../../dotdot-escape"}, "x")
	add(tar.Header{Name: outside + "/absolute-escape"}, "x")
	add(tar.Header{Name: "flash-worker/abs", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
	add(tar.Header{Name: "flash-worker/abs/through-symlink"}, "x")
	add(tar.Header{Name: "flash-worker/rel", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("../", 12) + outside}, "")
	add(tar.Header{Name: "flash-worker/rel/through-symlink"}, "x")
	add(tar.Header{Name: "flash-worker/hl", Typeflag: tar.TypeLink, Linkname: outside + "/target"}, "")
	add(tar.Header{Name: "flash-worker/hl"}, "written through a hard link")
	add(tar.Header{Name: "flash-worker/hl2", Typeflag: tar.TypeLink, Linkname: "flash-worker/" + strings.Repeat("../", 12) + outside + "/target"}, "")
	add(tar.Header{Name: "flash-worker/hl2"}, "written through a hard link")
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// Extraction runs before the sha256 is known, so a tarball from a hostile
// mirror is unpacked into the private temporary directory; with GNU tar and
// with busybox tar, none of its members may land or write outside it, and
// nothing of it runs or stays.
func TestStartScriptHostileTarball(t *testing.T) {
	rel := httpsRelease(t)
	py := python(t, "3.11")
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is needed by this test (apt-get install busybox-static): %v", err)
	}
	for _, impl := range []string{"gnu", "busybox"} {
		for _, shell := range []string{"/bin/bash", "/bin/dash"} {
			t.Run(impl+"/"+filepath.Base(shell), func(t *testing.T) {
				t.Parallel()
				root := t.TempDir()
				outside := filepath.Join(root, "outside")
				os.Mkdir(outside, 0o755)
				os.WriteFile(filepath.Join(outside, "target"), []byte("the victim's file\n"), 0o644)
				before := dirState(t, outside)
				hostile := hostileTarball(t, outside)
				srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hostile) }))
				defer srv.Close()
				c := container{t: t, rel: rel, shell: shell, image: "curl", url: srv.URL + "/" + a.File,
					fwDir: filepath.Join(root, "opt", "flash-worker"), cacheDir: filepath.Join(root, "vol", ".flash-worker")}
				box := toolbox(t, py, images["curl"]...)
				if impl == "busybox" {
					os.Remove(filepath.Join(box, "tar"))
					os.Symlink(busybox, filepath.Join(box, "tar"))
				}
				cmd := exec.Command(shell, "-c", c.script(a.Target.ID))
				cmd.Dir = root // where a relative escape would land
				cmd.Env = append([]string{"PATH=" + box, "HOME=" + t.TempDir()}, rel.env()...)
				out, err := cmd.CombinedOutput()
				if err == nil || strings.Contains(string(out), "unverified tree ran") || !strings.Contains(string(out), "could not download flash-worker 1.2.0") {
					t.Fatalf("exit %v; want a refused start that ran nothing:\n%s", err, out)
				}
				if after := dirState(t, outside); after != before {
					t.Errorf("a member left the extraction directory:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if got := listDir(filepath.Dir(c.fwDir)); len(got) != 0 {
					t.Errorf("left %v beside --fw-dir", got)
				}
				for _, n := range listDir(root) {
					if n != "outside" && n != "opt" {
						t.Errorf("%s was written beside the start's working directory", n)
					}
				}
			})
		}
	}
}

// A base image the worker cannot run on is told so before any download:
// which tools are missing, or that its C library is not glibc >= 2.28.
// With the blob already on the volume (the C library is asked in the
// background while a hit extracts), nothing runs and no tree is left.
func TestStartScriptPreflight(t *testing.T) {
	rel := httpsRelease(t)
	a, _ := rel.m.Find("py3.11-cpu-linux-x86_64")
	without := func(tools []string, drop ...string) []string {
		var out []string
		for _, tool := range tools {
			if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+tool+" ") {
				out = append(out, tool)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		tools []string // on PATH; python3 never is
		libc  string   // "TOOL:OUTPUT", a getconf or ldd stand-in; "" keeps the host's getconf
		want  string
	}{
		{"no tar and no gzip", without(images["curl"], "tar", "gzip"), "", "missing: tar gzip;"},
		{"no downloader", without(images["python"], "curl"), "", "missing: curl-or-wget-or-python3 sha256sum-or-python3;"},
		{"musl", without(images["curl"], "getconf"), "ldd:musl libc (x86_64)\nVersion 1.2.4", "no glibc (musl, or none), the worker needs glibc >= 2.28"},
		{"old glibc", without(images["curl"], "getconf"), "getconf:glibc 2.17", "glibc 2.17 < 2.28"},
		{"no libc tools at all", without(images["curl"], "getconf"), "", "no glibc"},
	}
	blob, err := os.ReadFile(filepath.Join(rel.dir, a.File))
	if err != nil {
		t.Fatal(err)
	}
	for _, shell := range []string{"/bin/bash", "/bin/dash"} {
		for _, tt := range tests {
			for _, cached := range []bool{false, true} {
				name := filepath.Base(shell) + "/" + tt.name
				if cached {
					name += "/blob on the volume"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					srv := newReleaseServer(t, rel.dir)
					root := t.TempDir()
					c := container{t: t, rel: rel, shell: shell, image: "curl", url: srv.URL + "/" + a.File,
						fwDir: filepath.Join(root, "opt", "flash-worker"), cacheDir: filepath.Join(root, "vol", ".flash-worker")}
					if cached {
						os.MkdirAll(filepath.Join(c.cacheDir, "sha256"), 0o755)
						os.WriteFile(filepath.Join(c.cacheDir, "sha256", a.SHA256+".tar.gz"), blob, 0o644)
					}
					box := t.TempDir()
					for _, tool := range tt.tools {
						p, err := exec.LookPath(tool)
						if err != nil {
							t.Fatalf("%s is needed by this test: %v", tool, err)
						}
						os.Symlink(p, filepath.Join(box, tool))
					}
					if tool, text, ok := strings.Cut(tt.libc, ":"); ok {
						os.WriteFile(filepath.Join(box, tool), []byte("#!/bin/sh\necho \""+text+"\"\n"), 0o755)
					}
					cmd := exec.Command(shell, "-c", c.script(a.Target.ID))
					cmd.Env = append([]string{"PATH=" + box}, rel.env()...)
					out, err := cmd.CombinedOutput()
					if err == nil || !strings.Contains(string(out), "this image cannot run flash-worker 1.2.0:") || !strings.Contains(string(out), tt.want) {
						t.Errorf("exit %v; want a failure saying %q:\n%s", err, tt.want, out)
					}
					if n := srv.downloads.Load(); n != 0 {
						t.Errorf("%d downloads before the image was found unfit", n)
					}
					if strings.Contains(string(out), " ok python ") {
						t.Errorf("the worker ran on an unfit image:\n%s", out)
					}
					if got := listDir(filepath.Join(root, "opt")); len(got) != 0 {
						t.Errorf("left %v beside --fw-dir", got)
					}
				})
			}
		}
	}
}
