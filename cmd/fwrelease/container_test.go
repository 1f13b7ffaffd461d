package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/containertest"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// exampleSnapshot is one snapshot of the example for the container tests of
// this test binary.
var exampleSnapshot struct {
	once sync.Once
	s    snapshot
	dir  string
}

func sharedExampleSnapshot(t *testing.T) (snapshot, string) {
	t.Helper()
	exampleSnapshot.once.Do(func() {
		dir, err := os.MkdirTemp("", "fwrelease-container-snapshot-")
		if err != nil {
			t.Fatal(err)
		}
		exampleSnapshot.dir = dir
		exampleSnapshot.s = releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	})
	if exampleSnapshot.s.dist == "" {
		t.Fatal("the shared snapshot failed to build (see the first test that built it)")
	}
	return exampleSnapshot.s, exampleSnapshot.dir
}

// dockerArgs is what the SDK's template gets for a target: inject
// --docker-args, downloading from url.
func dockerArgs(t *testing.T, s snapshot, id, url string) string {
	t.Helper()
	r := run(t, t.TempDir(), nil, "--allow-insecure", "inject", "--manifest", filepath.Join(s.dist, "manifest.json"),
		"--key", filepath.Join(s.dist, "snapshot.pub"), "--target", id, "--url", url, "--docker-args")
	if r.code != 0 {
		t.Fatalf("inject --docker-args: exit %d\n%s", r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// Each target of the example boots on its python:3.X-slim look-alike (no
// curl, no wget: the script downloads with python3) with dockerArgs as the
// container's command, as the SDK starts it: cold; with the network volume,
// whose cache a new container then uses with the download server gone;
// and restarted, reusing what it unpacked.
func TestContainerExampleOnSlim(t *testing.T) {
	rt := containertest.New(t)
	s, _ := sharedExampleSnapshot(t)
	for _, art := range s.manifest.Artifacts {
		t.Run(art.Target.ID, func(t *testing.T) {
			t.Parallel()
			img := rt.BaseImage(t, "slim-"+art.Target.Python)
			srv := httptest.NewServer(http.FileServer(http.Dir(s.dist)))
			defer srv.Close()
			args := dockerArgs(t, s, art.Target.ID, srv.URL+"/"+art.File)
			booted := "flash-worker 1.2.0 ok python " + art.Target.Python + "\n"
			vol := t.TempDir()
			opts := containertest.Options{Image: img, Cmd: []string{"sh", "-c", args}, Env: map[string]string{"FLASH_WORKER_SELFTEST": "1"}}
			withVol := opts
			withVol.Volumes = []string{vol + ":/runpod-volume"}
			check := func(what string, res containertest.Result) {
				t.Helper()
				if res.Code != 0 || !strings.HasSuffix(res.Stdout, booted) {
					t.Errorf("%s: exit %d, stdout %q, want it to end with %q; stderr:\n%s", what, res.Code, res.Stdout, booted, res.Stderr)
				}
			}
			check("cold", rt.Run(t, opts))
			check("with the volume", rt.Run(t, withVol))
			blobs, _ := filepath.Glob(filepath.Join(vol, ".flash-worker", "sha256", art.SHA256+".tar.gz"))
			if len(blobs) != 1 {
				t.Errorf("the volume has no cached blob %s.tar.gz", art.SHA256)
			}
			restarted := rt.Create(t, opts)
			check("first start", restarted.Run(t))
			srv.Close() // from here on, nothing can be downloaded
			check("restarted", restarted.Run(t))
			check("new container, cache on the volume", rt.Run(t, withVol))
		})
	}
}

// The overlay layout on the GPU look-alike: python3 there is 3.10, the
// image's torch is installed for 3.12 only; the py3.12 tarball, started by
// its dockerArgs, runs with python3.12 and sees the image's torch.
func TestContainerOverlayOnGPU(t *testing.T) {
	rt := containertest.New(t)
	s, _ := sharedExampleSnapshot(t)
	const id = "py" + containertest.TorchPython + "-cpu-linux-x86_64"
	var file string
	for _, a := range s.manifest.Artifacts {
		if a.Target.ID == id {
			file = a.File
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(s.dist)))
	defer srv.Close()
	args := dockerArgs(t, s, id, srv.URL+"/"+file)
	// The SDK's command runs in an inner shell; the outer one then imports
	// torch beside the worker's packages, as the worker's python does.
	check := `sh -c "$0" && PYTHONPATH=/opt/flash-worker/site-packages python` + containertest.TorchPython +
		` -s -c 'import torch, fwdemo_speedups; print("torch", torch.__version__)'`
	res := rt.Run(t, containertest.Options{Image: rt.BaseImage(t, "gpu"), Cmd: []string{"sh", "-c", check, args},
		Env: map[string]string{"FLASH_WORKER_SELFTEST": "1"}})
	want := "flash-worker 1.2.0 ok python " + containertest.TorchPython + "\ntorch 2.4.0\n"
	if res.Code != 0 || !strings.HasSuffix(res.Stdout, want) {
		t.Fatalf("exit %d, stdout %q, want it to end with %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
	}
}

// realWorkerBundled releases the real-worker fixture in the bundled layout
// for Python 3.11 (its own interpreter, console scripts in venv/bin) and
// returns the snapshot.
func realWorkerBundled(t *testing.T) snapshot {
	t.Helper()
	dir := t.TempDir()
	cfg := realWorker(t, dir)
	archive := pbsArchive(t, "3.11")
	data := string(readFile(t, cfg))
	text := strings.NewReplacer(
		`python: ["3.10", "3.11", "3.12", "3.13"]`, `python: ["3.11"]`,
		"\nfiles:", "\nlayout: bundled\nbundled: {archive: \""+archive+"\"}\nfiles:",
		"scripts/bootstrap.sh", "scripts/bootstrap-bundled.sh",
	).Replace(data)
	if strings.Count(text, "3.11") == strings.Count(data, "3.11") || !strings.Contains(text, "bootstrap-bundled.sh") {
		t.Fatal("the fixture's config no longer has what this test replaces")
	}
	os.WriteFile(cfg, []byte(text), 0o644)
	dist := filepath.Join(dir, "dist")
	env := []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "GITHUB_SHA=" + fixedCommit}
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--snapshot"); r.code != 0 {
		t.Fatalf("release --snapshot: exit %d\n%s", r.code, r.stderr)
	}
	m, err := manifest.Decode(readFile(t, filepath.Join(dist, "manifest.json")))
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{dist: dist, manifest: m}
}

// upgradeWheel writes fwfix-fast 0.4.0, newer than the one the fixture
// ships, into a new wheelhouse.
func upgradeWheel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := [][2]string{
		{"fwfix_fast/__init__.py", "SPEED = \"faster\"\n"},
		{"fwfix_fast-0.4.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fwfix-fast\nVersion: 0.4.0\n"},
		{"fwfix_fast-0.4.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	record.WriteString("fwfix_fast-0.4.0.dist-info/RECORD,,\n")
	files = append(files, [2]string{"fwfix_fast-0.4.0.dist-info/RECORD", record.String()})
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fwfix_fast-0.4.0-py3-none-any.whl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The real worker's shape in the bundled layout, started by its dockerArgs
// on python:3.11-slim: queue mode passes the self-test; LB mode
// (FLASH_ENDPOINT_TYPE=lb) starts the console script of a dependency from
// venv/bin and answers HTTP on its port; and inside the running worker a
// run-time pip install --upgrade of a shipped package replaces it.
func TestContainerRealWorkerBundled(t *testing.T) {
	rt := containertest.New(t)
	s := realWorkerBundled(t)
	a := s.manifest.Artifacts[0]
	srv := httptest.NewServer(http.FileServer(http.Dir(s.dist)))
	defer srv.Close()
	args := dockerArgs(t, s, a.Target.ID, srv.URL+"/"+a.File)
	img := rt.BaseImage(t, "slim-3.11")

	res := rt.Run(t, containertest.Options{Image: img, Cmd: []string{"sh", "-c", args}, Env: map[string]string{"FLASH_WORKER_SELFTEST": "1"}})
	want := "worker-fixture 1.4.1 ok python 3.11\n" + lockedFor("3.11")
	if res.Code != 0 || !strings.HasSuffix(res.Stdout, want) {
		t.Errorf("queue mode: exit %d, stdout %q, want it to end with %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
	}

	port := strings.TrimPrefix(testserver.FreeAddr(t), "127.0.0.1:")
	lb := rt.Create(t, containertest.Options{Image: img, Cmd: []string{"sh", "-c", args},
		Env:     map[string]string{"FLASH_ENDPOINT_TYPE": "lb", "PORT": port},
		Volumes: []string{upgradeWheel(t) + ":/wheels:ro"}})
	lb.Start(t)
	if body := lb.WaitHTTP(t, "http://127.0.0.1:"+port+"/ping", 2*time.Minute); body != `{"status": "healthy"}` {
		t.Errorf("/ping answered %q", body)
	}
	if body := lb.WaitHTTP(t, "http://127.0.0.1:"+port+"/run", 10*time.Second); body != `{"path": "/run", "python": "3.11", "worker": "1.4.1"}` {
		t.Errorf("/run answered %q", body)
	}

	upgrade := `python3 -m pip --disable-pip-version-check --python /opt/flash-worker/venv/bin/python install --root-user-action=ignore --no-index --find-links /wheels --upgrade fwfix-fast >&2 &&
		/opt/flash-worker/venv/bin/python -c 'import fwfix_fast; from importlib import metadata; print(metadata.version("fwfix-fast"), fwfix_fast.SPEED)' &&
		ls /opt/flash-worker/venv/lib/python3.11/site-packages | grep '^fwfix_fast-'`
	res = lb.Exec(t, "sh", "-c", upgrade)
	if want := "0.4.0 faster\nfwfix_fast-0.4.0.dist-info\n"; res.Code != 0 || res.Stdout != want {
		t.Errorf("pip install --upgrade fwfix-fast at run time: exit %d, stdout %q, want %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
	}
}

// The pinned SDK module's docker_args, split as the platform splits the
// template's dockerArgs, boot the worker on python:3.11-slim over https
// (the release server on 127.0.0.1, its CA mounted and named by
// SSL_CERT_FILE, which python3's download honours).
func TestContainerPinnedDockerArgs(t *testing.T) {
	rt := containertest.New(t)
	rel := httpsRelease(t)
	dir := t.TempDir()
	sdk := filepath.Join(dir, "sdk")
	for name, body := range sdkFiles {
		os.MkdirAll(filepath.Dir(filepath.Join(sdk, name)), 0o755)
		os.WriteFile(filepath.Join(sdk, name), []byte(body), 0o644)
	}
	if r := run(t, dir, rel.env(), "pin", "--manifest", rel.manifest, "--sdk", sdk, "--key", rel.pub); r.code != 0 {
		t.Fatalf("pin: exit %d\n%s", r.code, r.stderr)
	}
	const py = "3.11"
	split := `import json, shlex, sys
sys.path.insert(0, sys.argv[1])
from runpod_flash.core.resources import flash_worker_release as rel
print(json.dumps(shlex.split(rel.docker_args(sys.argv[2]))))`
	out, err := exec.Command(python(t, py), "-I", "-c", split, filepath.Join(sdk, "src"), py).Output()
	var argv []string
	if err != nil || json.Unmarshal(out, &argv) != nil || len(argv) != 3 || argv[0] != "bash" {
		t.Fatalf("docker_args(%q): %v\n%s", py, err, out)
	}
	res := rt.Run(t, containertest.Options{Image: rt.BaseImage(t, "slim-"+py), Cmd: argv,
		Env:     map[string]string{"FLASH_WORKER_SELFTEST": "1", "SSL_CERT_FILE": "/ca.pem"},
		Volumes: []string{rel.caFile + ":/ca.pem:ro"}})
	if want := "flash-worker 1.2.0 ok python " + py + "\n"; res.Code != 0 || !strings.HasSuffix(res.Stdout, want) {
		t.Fatalf("exit %d, stdout %q, want it to end with %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
	}
}
