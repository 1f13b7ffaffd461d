package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/containertest"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// byteCounter fronts a registry and counts the bytes of every response
// body that went back to a client: what a pull transferred, measured at
// the registry.
type byteCounter struct {
	host  string // the proxy's host:port, for references
	bytes atomic.Int64
	srv   *httptest.Server
}

func countBytes(t *testing.T, registry string) *byteCounter {
	t.Helper()
	target, _ := url.Parse("http://" + registry)
	c := &byteCounter{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(r *http.Response) error {
		r.Body = &countingBody{ReadCloser: r.Body, n: &c.bytes}
		return nil
	}
	c.srv = httptest.NewServer(rp)
	t.Cleanup(c.srv.Close)
	c.host = strings.TrimPrefix(c.srv.URL, "http://")
	return c
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// imageRelease adds a signing key, the registry as the OCI channel and
// the bases (the slim look-alikes) to cfg, and releases it.
func imageRelease(t *testing.T, dir, cfg, registry string, extra ...string) *manifest.Manifest {
	t.Helper()
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "release.key")); err != nil {
		writeKeyPair(t, filepath.Join(filepath.Dir(cfg), "release.key"), filepath.Join(dir, "release.pub"))
		readConfig(t, cfg).
			set("sign", map[string]any{"key": "release.key"}).
			set("publish.oci", map[string]any{"repository": registry + "/flash-worker", "plain_http": true}).
			set("images.bases", map[string]any{"cpu": registry + "/fwrelease-test/slim-{python}:latest"}).
			write(t, cfg)
	}
	dist := filepath.Join(dir, "dist")
	os.RemoveAll(dist)
	args := append([]string{"--config", cfg, "--dist", dist, "--allow-insecure", "release"}, extra...)
	r := run(t, dir, []string{"GITHUB_SHA=" + fixedCommit}, args...)
	if r.code != 0 {
		t.Fatalf("release: exit %d\n%s", r.code, r.stderr)
	}
	m, err := manifest.Decode(readFile(t, filepath.Join(dist, "manifest.json")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every target of the example boots from its images, pulled by podman from
// the loopback registry: the overlay image by its own entrypoint, and the
// plain base with the mount image at /opt/flash-worker (read-only) by
// bootstrap.sh.
func TestContainerImagesBoot(t *testing.T) {
	rt := containertest.New(t)
	for _, py := range []string{"3.10", "3.11", "3.12", "3.13"} {
		rt.BaseImage(t, "slim-"+py) // pushed to the registry, for the overlay's base
	}
	dir := t.TempDir()
	copyExample(t, filepath.Join(dir, "src"), 0o644, 0o755)
	m := imageRelease(t, dir, filepath.Join(dir, "src", "fwrelease.yaml"), rt.Registry())
	for _, a := range m.Artifacts {
		t.Run(a.Target.ID, func(t *testing.T) {
			if a.Images == nil || a.Images.Mount == "" || a.Images.Overlay["cpu"] == "" {
				t.Fatalf("images %+v", a.Images)
			}
			env := map[string]string{"FLASH_WORKER_SELFTEST": "1"}
			overlay := rt.Pull(t, a.Images.Overlay["cpu"])
			if res := rt.Run(t, containertest.Options{Image: overlay, Env: env}); res.Code != 0 || !strings.HasSuffix(res.Stdout, booted(a.Target.Python)) {
				t.Errorf("overlay image: exit %d, stdout %q; stderr:\n%s", res.Code, res.Stdout, res.Stderr)
			}
			mount := rt.Pull(t, a.Images.Mount)
			res := rt.Run(t, containertest.Options{
				Image:  rt.BaseImage(t, "slim-"+a.Target.Python),
				Cmd:    []string{"/opt/flash-worker/bootstrap.sh"},
				Env:    env,
				Mounts: []string{"type=image,source=" + mount + ",destination=/opt/flash-worker"},
			})
			if res.Code != 0 || !strings.HasSuffix(res.Stdout, booted(a.Target.Python)) {
				t.Errorf("base with the mount image: exit %d, stdout %q; stderr:\n%s", res.Code, res.Stdout, res.Stderr)
			}
			// The mount is read-only: bootstrap.sh cannot have written into it.
			probe := rt.Run(t, containertest.Options{
				Image:  rt.BaseImage(t, "slim-"+a.Target.Python),
				Cmd:    []string{"sh", "-c", "touch /opt/flash-worker/x 2>/dev/null && echo writable || echo read-only"},
				Mounts: []string{"type=image,source=" + mount + ",destination=/opt/flash-worker"},
			})
			if probe.Stdout != "read-only\n" {
				t.Errorf("the mounted image is %q", probe.Stdout)
			}
		})
	}
}

// An upgrade that changes only the worker's files (the realistic
// dependency tree unchanged) keeps the deps layer's digest, and podman's
// pull of the new overlay and mount images, onto a host that has the
// previous ones, transfers at most 1% of the tarball's bytes, measured at
// the registry.
func TestContainerImagesUpgrade(t *testing.T) {
	rt := containertest.New(t)
	rt.BaseImage(t, "slim-3.11") // in the registry (the overlay's base) and on the host
	counter := countBytes(t, rt.Registry())
	dir := t.TempDir()
	cfg := depsDirConfig(t, filepath.Join(dir, "src"), realisticTree(t), nil)
	// The base the images name is the registry's, through the counter.
	first := imageRelease(t, dir, cfg, counter.host)
	old := first.Artifacts[0]
	rt.Pull(t, old.Images.Overlay["cpu"])
	rt.Pull(t, old.Images.Mount)

	boot := filepath.Join(dir, "src", "scripts", "bootstrap.sh")
	os.WriteFile(boot, append(readFile(t, boot), "# 1.0.1: the worker changed\n"...), 0o755)
	second := imageRelease(t, dir, cfg, counter.host, "--version", "1.0.1")
	a := second.Artifacts[0]
	if a.Layers[0].Name != "deps" || a.Layers[0].Digest != old.Layers[0].Digest {
		t.Errorf("deps layer %+v, then %+v: the dependencies did not change", old.Layers[0], a.Layers[0])
	}
	if a.Layers[1].Digest == old.Layers[1].Digest {
		t.Errorf("worker layer %s unchanged although bootstrap.sh and .version changed", a.Layers[1].Digest)
	}

	counter.bytes.Store(0)
	rt.Pull(t, a.Images.Overlay["cpu"])
	overlayBytes := counter.bytes.Swap(0)
	rt.Pull(t, a.Images.Mount)
	mountBytes := counter.bytes.Load()
	t.Logf("tarball %d bytes (deps layer %d, worker layer %d); the upgrade's pull transferred %d bytes (overlay) and %d bytes (mount)",
		a.Size, a.Layers[0].Size, a.Layers[1].Size, overlayBytes, mountBytes)
	if limit := a.Size / 100; overlayBytes > limit || mountBytes > limit {
		t.Errorf("the upgrade's pulls transferred %d (overlay) and %d (mount) bytes, over 1%% of the %d-byte tarball", overlayBytes, mountBytes, a.Size)
	}
	if overlayBytes == 0 || mountBytes == 0 {
		t.Errorf("nothing went through the counter (%d, %d): the pulls did not reach the registry through it", overlayBytes, mountBytes)
	}
}

// The real-worker fixture (uv.lock, a C extension per ABI, the static uv)
// boots from its images the same way, reporting exactly what it locked.
func TestContainerImagesRealWorker(t *testing.T) {
	rt := containertest.New(t)
	for _, py := range []string{"3.10", "3.11", "3.12", "3.13"} {
		rt.BaseImage(t, "slim-"+py)
	}
	dir := t.TempDir()
	m := imageRelease(t, dir, realWorker(t, dir), rt.Registry())
	for _, a := range m.Artifacts {
		t.Run(a.Target.ID, func(t *testing.T) {
			py := a.Target.Python
			want := "uv 0.7.19 (fwrelease test fake, x86_64)\n" + fmt.Sprintf("worker-fixture 1.4.1 ok python %s\n", py) + lockedFor(py)
			overlay := rt.Pull(t, a.Images.Overlay["cpu"])
			// Arguments after the image go to its entrypoint, bootstrap.sh.
			res := rt.Run(t, containertest.Options{Image: overlay, Cmd: []string{"/opt/flash-worker/bootstrap.sh", "--test"}})
			if res.Code != 0 || res.Stdout != want {
				t.Errorf("overlay image: exit %d\n got: %q\nwant: %q\n%s", res.Code, res.Stdout, want, res.Stderr)
			}
			mount := rt.Pull(t, a.Images.Mount)
			res = rt.Run(t, containertest.Options{
				Image:  rt.BaseImage(t, "slim-"+py),
				Cmd:    []string{"/opt/flash-worker/bootstrap.sh", "--test"},
				Mounts: []string{"type=image,source=" + mount + ",destination=/opt/flash-worker"},
			})
			if res.Code != 0 || res.Stdout != want {
				t.Errorf("base with the mount image: exit %d\n got: %q\nwant: %q\n%s", res.Code, res.Stdout, want, res.Stderr)
			}
		})
	}
}
