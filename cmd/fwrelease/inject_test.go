package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// releaseServer serves a snapshot's local tree over loopback HTTP, and can
// be told to misbehave.
type releaseServer struct {
	*httptest.Server
	mode     atomic.Value // "", "corrupt", "truncate", "missing"
	requests atomic.Int32
}

func newReleaseServer(t *testing.T, root string) *releaseServer {
	s := &releaseServer{}
	s.mode.Store("")
	files := http.FileServer(http.Dir(root))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(r.URL.Path)))
		switch s.mode.Load().(string) {
		case "missing":
			http.NotFound(w, r)
		case "corrupt":
			if err == nil {
				data[len(data)/2] ^= 0xff
				w.Write(data)
			}
		case "truncate":
			// Promise the whole file, send half, then drop the connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.(*net.TCPConn).SetLinger(0)
					conn.Close()
				}
			}
		default:
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// toolbox makes a PATH holding only the named tools, as a minimal image would.
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

var baseTools = []string{"sh", "bash", "tar", "gzip", "mktemp", "cat", "rm", "mv", "cp", "mkdir", "dirname", "cut", "sleep"}

func TestInjectStartCommand(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	const id = "py3.11-cpu-linux-x86_64"
	a, _ := s.manifest.Find(id)
	py := python(t, "3.11")

	images := map[string][]string{
		"curl":                      append([]string{"curl", "sha256sum"}, baseTools...),
		"wget only":                 append([]string{"wget", "sha256sum"}, baseTools...),
		"python only, no sha256sum": baseTools,
	}
	for name, tools := range images {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newReleaseServer(t, filepath.Join(s.dist, "local"))
			url := srv.URL + "/v1.2.0/" + a.File
			root := t.TempDir()
			fwDir, cache := filepath.Join(root, "opt", "flash-worker"), filepath.Join(root, "volume", ".flash-worker")
			r := run(t, dir, nil, "inject", "--manifest", filepath.Join(s.dist, "manifest.json"), "--target", id, "--url", url, "--fw-dir", fwDir, "--cache-dir", cache)
			if r.code != 0 {
				t.Fatalf("inject: %s", r.stderr)
			}
			path := toolbox(t, py, tools...)
			start := func() (string, error) {
				cmd := exec.Command("/usr/bin/bash", "-c", r.stdout)
				cmd.Env = []string{"PATH=" + path, "FLASH_WORKER_SELFTEST=1", "HOME=" + root}
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			const ok = "flash-worker 1.2.0 ok python 3.11\n"

			srv.mode.Store("")
			out, err := start()
			if err != nil || !strings.HasSuffix(out, ok) {
				t.Fatalf("cold start: %v\n%s", err, out)
			}
			if v, _ := os.ReadFile(filepath.Join(cache, "v1.2.0", ".version")); string(v) != "1.2.0\n" {
				t.Errorf("the volume cache has no .version (dotfiles must be copied): %q", v)
			}

			before := srv.requests.Load()
			srv.mode.Store("missing") // the server is as good as gone
			if out, err := start(); err != nil || !strings.HasSuffix(out, ok) {
				t.Errorf("warm restart: %v\n%s", err, out)
			}
			os.RemoveAll(fwDir)
			if out, err := start(); err != nil || !strings.HasSuffix(out, ok) {
				t.Errorf("new container from the volume cache: %v\n%s", err, out)
			}
			if srv.requests.Load() != before {
				t.Errorf("warm and cached starts downloaded (%d requests)", srv.requests.Load()-before)
			}
			if entries, _ := os.ReadDir(filepath.Dir(fwDir)); len(entries) != 1 {
				t.Errorf("left temporary directories beside %s: %v", fwDir, entries)
			}

			// An older version in place and in the cache: upgrade.
			os.RemoveAll(filepath.Join(cache, "v1.2.0"))
			os.WriteFile(filepath.Join(fwDir, ".version"), []byte("1.1.0\n"), 0o644)
			os.MkdirAll(filepath.Join(cache, "v1.1.0"), 0o755)
			exec.Command("cp", "-R", fwDir+"/.", filepath.Join(cache, "v1.1.0")).Run()
			srv.mode.Store("")
			if out, err := start(); err != nil || !strings.HasSuffix(out, ok) {
				t.Errorf("upgrade over 1.1.0: %v\n%s", err, out)
			}
			if v, _ := os.ReadFile(filepath.Join(fwDir, ".version")); string(v) != "1.2.0\n" {
				t.Errorf("after the upgrade .version is %q", v)
			}
			if v, _ := os.ReadFile(filepath.Join(cache, "v1.1.0", ".version")); string(v) != "1.1.0\n" {
				t.Errorf("the upgrade disturbed the older cache entry: %q", v)
			}

			// Bad downloads are never executed, and leave nothing behind.
			for _, mode := range []string{"corrupt", "truncate", "missing"} {
				os.RemoveAll(fwDir)
				os.RemoveAll(cache)
				srv.mode.Store(mode)
				out, err := start()
				if err == nil || strings.Contains(out, " ok python ") {
					t.Errorf("%s download: exit %v, and it ran:\n%s", mode, err, out)
				}
				if !strings.Contains(out, "could not download flash-worker 1.2.0") {
					t.Errorf("%s download: no clear message:\n%s", mode, out)
				}
				if _, err := os.Stat(fwDir); err == nil {
					t.Errorf("%s download left %s", mode, fwDir)
				}
				if entries, _ := os.ReadDir(filepath.Dir(fwDir)); len(entries) != 0 {
					t.Errorf("%s download left temporary directories: %v", mode, entries)
				}
			}
		})
	}
}

func TestInjectRefusesUnsafeValues(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	m := filepath.Join(s.dist, "manifest.json")
	for _, url := range []string{"https://x/a'b", "https://x/$(reboot)", "https://x/a b"} {
		r := run(t, dir, nil, "inject", "--manifest", m, "--target", "py3.11-cpu-linux-x86_64", "--url", url)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot be put in a start command safely") {
			t.Errorf("--url %q: exit %d, %s", url, r.code, r.stderr)
		}
	}
	r := run(t, dir, nil, "inject", "--manifest", m, "--target", "py3.9-cpu-linux-x86_64")
	if r.code != 2 || !strings.Contains(r.stderr, "py3.11-cpu-linux-x86_64") {
		t.Errorf("unknown target: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, dir, nil, "inject", "--manifest", m, "--target", "py3.11-cpu-linux-x86_64")
	if r.code != 1 || !strings.Contains(r.stderr, "no https URL") {
		t.Errorf("a snapshot has only file:// URLs: exit %d, %s", r.code, r.stderr)
	}
}
