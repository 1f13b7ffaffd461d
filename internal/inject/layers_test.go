package inject

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/layer"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// layerServer serves layer blobs by path on loopback http and counts the
// requests for each; a path in bad is answered with other bytes, and gone
// answers everything 404.
type layerServer struct {
	*httptest.Server
	mu    sync.Mutex
	blobs map[string][]byte
	bad   map[string][]byte
	hits  map[string]int
	gone  bool
}

func newLayerServer(t *testing.T) *layerServer {
	s := &layerServer{blobs: map[string][]byte{}, bad: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		data, ok := s.blobs[r.URL.Path]
		if b, swapped := s.bad[r.URL.Path]; swapped {
			data = b
		}
		gone := s.gone
		s.mu.Unlock()
		if !ok || gone {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *layerServer) requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.hits {
		out[k] = v
	}
	clear(s.hits)
	return out
}

// layeredRelease packs a small worker tree, whose worker file says which
// version it is, into the default layers, publishes them on srv and returns
// the artifact listing them.
func layeredRelease(t *testing.T, srv *layerServer, worker string, extra ...string) *manifest.Artifact {
	t.Helper()
	entries, err := archive.Collect(workerTree(t, worker, extra...))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := layer.Write(context.Background(), entries, layer.Defaults("overlay"), layer.Options{Dir: t.TempDir(), Epoch: time.Unix(1767225600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	a := artifact()
	sum := sha256.Sum256([]byte(worker)) // stands for the tarball's, the tree's identity
	a.SHA256 = hex.EncodeToString(sum[:])
	for _, l := range layers {
		data, err := os.ReadFile(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		p := "/layers/" + strings.TrimPrefix(l.Digest, "sha256:") + ".tar.gz"
		srv.mu.Lock()
		srv.blobs[p] = data
		srv.mu.Unlock()
		a.Layers = append(a.Layers, manifest.Layer{Name: l.Name, Digest: l.Digest, Size: l.Size, DiffID: l.DiffID, TarSize: l.TarSize, URLs: []string{srv.URL + p}})
	}
	return a
}

// tarballRelease is the same tree as a tarball served by srv at
// /tarball.tar.gz, with its tar stream's diff_id and tar_size.
func tarballRelease(t *testing.T, srv *layerServer, worker string, extra ...string) *manifest.Artifact {
	t.Helper()
	entries, err := archive.Collect(workerTree(t, worker, extra...))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := archive.Pack(context.Background(), &buf, entries, archive.Options{Top: "flash-worker", Format: archive.TarGz, Epoch: time.Unix(1767225600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.blobs["/tarball.tar.gz"] = buf.Bytes()
	srv.mu.Unlock()
	a := artifact()
	a.SHA256, a.Size, a.DiffID, a.TarSize, a.URLs = d.SHA256, d.Size, "sha256:"+d.TarSHA256, d.TarSize, []string{srv.URL + "/tarball.tar.gz"}
	return a
}

// workerTree is a worker's tree whose bootstrap.sh prints its worker and
// deps data; extra[0] names one more (empty) file.
func workerTree(t *testing.T, worker string, extra ...string) string {
	t.Helper()
	tree := t.TempDir()
	for name, body := range map[string]string{
		extra[0]:                      "",
		"bootstrap.sh":                "#!/bin/sh\nd=$(dirname \"$0\")\necho \"worker $(cat \"$d/src/worker.txt\") deps $(cat \"$d/site-packages/dep/data.txt\")\"\n",
		".version":                    "1.2.0\n",
		"src/worker.txt":              worker,
		"site-packages/dep/data.txt":  "dep-1\n",
		"site-packages/dep/filler.py": strings.Repeat("# the dependency's bulk\n", 4000),
		// Incompressible, and the same in every release: a gzip bomb in the
		// deps layer's place could inflate to ~1000 times the layer's size
		// before the download's own bound stops it.
		"site-packages/dep/lib.so": string(noise(64 << 10)),
	} {
		os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// noise is n bytes that do not compress, the same in every call.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// cachedName is a layer's name on the volume: its uncompressed stream, by
// its diff ID.
func cachedName(l manifest.Layer) string {
	return strings.TrimPrefix(l.DiffID, "sha256:") + ".tar"
}

func layerPath(l manifest.Layer) string {
	return "/layers/" + strings.TrimPrefix(l.Digest, "sha256:") + ".tar.gz"
}

// pathOf makes a PATH holding only the named tools, as a minimal base image
// would.
func pathOf(t *testing.T, tools []string) string {
	t.Helper()
	dir := t.TempDir()
	// python3 itself, not a version manager's shim that needs bash
	py, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("python3 is needed by this test (apt-get install python3): %v", err)
	}
	os.Symlink(strings.TrimSpace(string(py)), filepath.Join(dir, "python3"))
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s is needed by this test (apt-get install curl wget dash python3): %v", tool, err)
		}
		os.Symlink(p, filepath.Join(dir, tool))
	}
	return dir
}

var (
	startTools = []string{"sh", "tar", "gzip", "mktemp", "cat", "rm", "mv", "mkdir", "sleep", "touch", "ls", "tail", "find",
		"sed", "tr", "dirname", "mkfifo", "head", "tee", "xargs", "timeout", "getconf"}
	downloaders = map[string][]string{"curl": {"curl", "sha256sum"}, "wget": {"wget", "sha256sum"}, "python": nil}
)

// The layered start script for real, in bash and dash, with curl, wget or
// only python3: a cold boot fetches every layer, a second container takes
// them off the volume with the server gone, an upgrade that changed only
// the worker downloads only the worker layer, a tampered layer on the
// volume is replaced, and a layer whose download mismatches leaves nothing
// and runs nothing.
func TestLayeredStartScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the start script with curl, wget and python3")
	}
	t.Parallel()
	for _, shell := range []string{"bash", "dash"} {
		for _, image := range []string{"curl", "wget", "python"} {
			t.Run(shell+"/"+image, func(t *testing.T) {
				t.Parallel()
				srv := newLayerServer(t)
				v1 := layeredRelease(t, srv, "v1\n", "src/a.txt")
				v2 := layeredRelease(t, srv, "v2\n", "src/a.txt")
				evil := layeredRelease(t, srv, "evil\n", "src/evil.txt")
				if v1.Layers[0].Digest != v2.Layers[0].Digest || v1.Layers[1].Digest == v2.Layers[1].Digest {
					t.Fatalf("the deps layer should be unchanged and the worker's changed: %+v then %+v", v1.Layers, v2.Layers)
				}
				path := pathOf(t, append(append([]string{shell}, startTools...), downloaders[image]...))
				vol := filepath.Join(t.TempDir(), "runpod-volume")
				os.Mkdir(vol, 0o755)
				cache := filepath.Join(vol, ".flash-worker")
				blobs := filepath.Join(cache, "sha256")
				start := func(a *manifest.Artifact, fwDir string) (string, error) {
					t.Helper()
					script, err := Script("1.2.0", a, Options{Layers: true, AllowInsecure: true, FWDir: fwDir, CacheDir: cache})
					if err != nil {
						t.Fatal(err)
					}
					// umask 000: the tree's mode must not follow it.
					cmd := exec.Command(filepath.Join(path, shell), "-c", "umask 000\n"+script)
					cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
					out, err := cmd.CombinedOutput()
					return string(out), err
				}
				var last string // what the last boot printed
				boot := func(what string, a *manifest.Artifact, worker, telemetry string) string {
					t.Helper()
					fwDir := filepath.Join(t.TempDir(), "opt", "flash-worker")
					out, err := start(a, fwDir)
					if err != nil || !strings.HasSuffix(out, "worker "+worker+" deps dep-1\n") {
						t.Fatalf("%s: %v\n%s", what, err, out)
					}
					last = out
					if !regexp.MustCompile(`(?m)^flash-worker: 1\.2\.0 cache=` + telemetry + `$`).MatchString(out) {
						t.Errorf("%s: no telemetry line \"cache=%s\":\n%s", what, telemetry, out)
					}
					if fi, err := os.Stat(fwDir); err != nil || fi.Mode().Perm() != 0o755 {
						t.Errorf("%s: --fw-dir %v, want mode 0755 whatever the umask (%v)", what, fi.Mode(), err)
					}
					if m, _ := os.ReadFile(filepath.Join(fwDir, ".fw-sha256")); strings.TrimSpace(string(m)) != a.SHA256 {
						t.Errorf("%s: the restart marker is %q, want the artifact's sha256", what, m)
					}
					return fwDir
				}
				times := "download_ms=[0-9]+ verify_ms=[0-9]+ extract_ms=[0-9]+ clock=/proc/uptime"
				deps, w1, w2 := v1.Layers[0], v1.Layers[1], v2.Layers[1]
				expectRequests := func(what string, want map[string]int) {
					t.Helper()
					if got := srv.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%s: requests %v, want %v", what, got, want)
					}
				}

				// Cold: both layers downloaded, in order, and cached
				// uncompressed by diff ID.
				fwDir := boot("cold", v1, "v1", fmt.Sprintf("download bytes=%d %s layers=2 cached=0", deps.Size+w1.Size, times))
				expectRequests("cold", map[string]int{layerPath(deps): 1, layerPath(w1): 1})
				for _, l := range v1.Layers {
					if sum, _ := archive.FileSHA256(filepath.Join(blobs, cachedName(l))); "sha256:"+sum != l.DiffID {
						t.Errorf("layer %s is not on the volume, uncompressed, by its diff ID (sha256 %q)", l.Name, sum)
					}
				}
				// A restart reuses the tree; another container takes the
				// layers off the volume, with the server gone.
				srv.mu.Lock()
				srv.gone = true
				srv.mu.Unlock()
				if out, err := start(v1, fwDir); err != nil || !strings.Contains(out, "cache=restart bytes=0") {
					t.Errorf("restart: %v\n%s", err, out)
				}
				boot("volume", v1, "v1", "volume bytes=0 "+times+" layers=2 cached=2")
				expectRequests("volume", map[string]int{})
				srv.mu.Lock()
				srv.gone = false
				srv.mu.Unlock()

				// The upgrade downloads only the changed worker layer.
				boot("upgrade", v2, "v2", fmt.Sprintf("download bytes=%d %s layers=2 cached=1", w2.Size, times))
				expectRequests("upgrade", map[string]int{layerPath(w2): 1})

				// A tampered deps layer on the volume (another layer's valid
				// tar) is replaced; the worker layer is taken off the volume.
				depsBlob := filepath.Join(blobs, cachedName(deps))
				other, _ := os.ReadFile(filepath.Join(blobs, cachedName(w1)))
				os.WriteFile(depsBlob, other, 0o644)
				boot("tampered", v2, "v2", fmt.Sprintf("download bytes=%d %s layers=2 cached=1", deps.Size, times))
				expectRequests("tampered", map[string]int{layerPath(deps): 1})
				if sum, _ := archive.FileSHA256(depsBlob); "sha256:"+sum != deps.DiffID {
					t.Errorf("the tampered deps layer was not replaced: sha256 %s", sum)
				}

				// A co-tenant on the volume: the deps layer's name is a FIFO
				// nobody writes (replaced, never read), then sha256 is a
				// symlink to a local directory (not used, nothing in it touched).
				os.Remove(depsBlob)
				syscall.Mkfifo(depsBlob, 0o644)
				boot("FIFO", v2, "v2", fmt.Sprintf("download bytes=%d %s layers=2 cached=1", deps.Size, times))
				expectRequests("FIFO", map[string]int{layerPath(deps): 1})
				if sum, _ := archive.FileSHA256(depsBlob); "sha256:"+sum != deps.DiffID {
					t.Errorf("the FIFO in the deps layer's place was not replaced by the layer")
				}
				victim := t.TempDir()
				os.WriteFile(filepath.Join(victim, strings.Repeat("0", 64)+".tar"), []byte("the victim's\n"), 0o644)
				os.Rename(blobs, blobs+".away")
				os.Symlink(victim, blobs)
				boot("symlinked sha256", v2, "v2", fmt.Sprintf("download bytes=%d %s layers=2 cached=0", deps.Size+w2.Size, times))
				if got, _ := os.ReadDir(victim); !strings.Contains(last, "not using the cache") || len(got) != 1 {
					t.Errorf("a symlinked sha256: %v in the local directory, and:\n%s", got, last)
				}
				os.Remove(blobs)
				os.Rename(blobs+".away", blobs)
				srv.requests()

				// A mirror sending another worker layer (with a file of its
				// own) for the worker layer, then a good one: the tree is the
				// good layers' and nothing of the bad stream's.
				os.RemoveAll(cache)
				mirrored := *v2
				mirrored.Layers = slices.Clone(v2.Layers)
				mirrored.Layers[1].URLs = []string{srv.URL + layerPath(evil.Layers[1]), srv.URL + layerPath(w2)}
				fwDir = boot("bad mirror", &mirrored, "v2", fmt.Sprintf("download bytes=%d %s layers=2 cached=1", deps.Size+w2.Size, times))
				expectRequests("bad mirror", map[string]int{layerPath(deps): 1, layerPath(evil.Layers[1]): 1, layerPath(w2): 1})
				if _, err := os.Stat(filepath.Join(fwDir, "src", "evil.txt")); err == nil {
					t.Errorf("a file of the mismatching stream is in the tree")
				}

				// A worker layer whose download is another layer's bytes, on an
				// empty volume: nothing runs, nothing is left.
				os.RemoveAll(cache)
				srv.mu.Lock()
				srv.bad[layerPath(w2)] = other
				srv.mu.Unlock()
				fwDir = filepath.Join(t.TempDir(), "opt", "flash-worker")
				out, err := start(v2, fwDir)
				if err == nil || strings.Contains(out, "worker v") || !strings.Contains(out, "could not download flash-worker 1.2.0") {
					t.Errorf("a mismatching layer: exit %v, and it ran or said nothing clear:\n%s", err, out)
				}
				if got, _ := os.ReadDir(filepath.Dir(fwDir)); len(got) != 0 {
					t.Errorf("a mismatching layer left %v beside --fw-dir", got)
				}
				entries, _ := os.ReadDir(blobs)
				for _, e := range entries {
					if e.Name() != cachedName(deps) {
						t.Errorf("a mismatching layer left %s in the volume cache", e.Name())
					}
				}
			})
		}
	}
}

// bomb is a gzip tar stream holding one file of n zero bytes: a few hundred
// KB that inflate to n.
func bomb(t *testing.T, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "bomb", Mode: 0o644, Size: n, Typeflag: tar.TypeReg})
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zeros)) {
		tw.Write(zeros[:min(left, int64(len(zeros)))])
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// largest is the most bytes of regular files under the directories at any
// moment, polled until stop is closed.
func largest(dirs []string, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var most int64
		for {
			var now int64
			for _, d := range dirs {
				filepath.Walk(d, func(_ string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() {
						now += fi.Size()
					}
					return nil
				})
			}
			most = max(most, now)
			select {
			case <-stop:
				out <- most
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

// A mirror serving a gzip bomb: the script inflates at most the tar
// stream's tar_size (rounded up to a file size limit's block) of it, so the
// private directory and the volume never hold more than that, and the next
// mirror's bytes boot. For a layer on a volume and a tarball the bound is
// the file size limit of the tee writing the volume's copy; for a layer
// with no volume, head's. The mirror is named either way: curl, cut off
// mid-stream, says its download failed; python3 reads to the end and finds
// the digest differs.
func TestLayeredStartScriptGzipBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the start script with curl and python3")
	}
	t.Parallel()
	const inflated = 128 << 20
	for _, run := range []struct{ shell, image, kind string }{
		{"dash", "python", "layers"}, {"bash", "curl", "layers"},
		{"dash", "python", "layers-no-volume"},
		{"dash", "python", "tarball"}, {"bash", "curl", "tarball"},
	} {
		t.Run(run.shell+"/"+run.image+"/"+run.kind, func(t *testing.T) {
			t.Parallel()
			srv := newLayerServer(t)
			srv.mu.Lock()
			srv.blobs["/bomb"] = bomb(t, inflated)
			srv.mu.Unlock()
			var a *manifest.Artifact
			var tarSize int64
			if run.kind == "tarball" {
				a = tarballRelease(t, srv, "v1\n", "src/a.txt")
				a.URLs = []string{srv.URL + "/bomb", a.URLs[0]}
				tarSize = a.TarSize
			} else {
				a = layeredRelease(t, srv, "v1\n", "src/a.txt")
				a.Layers = slices.Clone(a.Layers)
				deps := a.Layers[0]
				a.Layers[0].URLs = []string{srv.URL + "/bomb", srv.URL + layerPath(deps)}
				tarSize = deps.TarSize
			}
			path := pathOf(t, append(append([]string{run.shell}, startTools...), downloaders[run.image]...))
			root := t.TempDir()
			fwDir, cache := filepath.Join(root, "opt", "flash-worker"), filepath.Join(root, "vol", ".flash-worker")
			os.MkdirAll(filepath.Dir(fwDir), 0o755)
			if run.kind != "layers-no-volume" {
				os.MkdirAll(filepath.Dir(cache), 0o755)
			}
			script, err := Script("1.2.0", a, Options{Layers: run.kind != "tarball", AllowInsecure: true, FWDir: fwDir, CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			most := largest([]string{filepath.Dir(fwDir), filepath.Dir(cache)}, stop)
			cmd := exec.Command(filepath.Join(path, run.shell), "-c", script)
			cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			close(stop)
			if err != nil || !strings.HasSuffix(string(out), "worker v1 deps dep-1\n") || !regexp.MustCompile(`/bomb: (not the release|download failed)`).MatchString(string(out)) {
				t.Fatalf("exit %v; want the bomb refused and the next mirror's bytes booted:\n%s", err, out)
			}
			n := <-most
			t.Logf("at most %d bytes on disk at once", n)
			// The legitimate tree and cache are well under a MiB here; an
			// unbounded inflation of the bomb's first a.Size bytes passes
			// 16 MiB.
			if n > 16<<20 {
				t.Errorf("%d bytes on disk at once while the %d-byte bomb was refused (the tar stream's tar_size is %d)", n, inflated, tarSize)
			}
			if _, err := os.Stat(cache); (err == nil) == (run.kind == "layers-no-volume") {
				t.Errorf("the cache directory: %v, want it made only where the volume is", err)
			}
		})
	}
}
