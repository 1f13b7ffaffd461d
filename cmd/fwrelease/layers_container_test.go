package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/containertest"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// layeredRelease adds a key and an S3 channel behind endpoint to cfg, and
// releases it as version; it returns the manifest and its path.
func layeredRelease(t *testing.T, dir, cfg, endpoint string, env []string, version string) (*manifest.Manifest, string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "release.pub")); err != nil {
		writeKeyPair(t, filepath.Join(filepath.Dir(cfg), "release.key"), filepath.Join(dir, "release.pub"))
		readConfig(t, cfg).
			set("sign", map[string]any{"key": "release.key"}).
			set("publish.s3", map[string]any{"bucket": "releases", "prefix": "flash-worker", "region": "us-east-1", "endpoint": endpoint, "path_style": true}).
			write(t, cfg)
	}
	dist := filepath.Join(dir, "dist-"+version)
	args := []string{"--config", cfg, "--dist", dist, "--allow-insecure", "release", "--version", version}
	if r := run(t, dir, append(env, "GITHUB_SHA="+fixedCommit), args...); r.code != 0 {
		t.Fatalf("release: exit %d\n%s", r.code, r.stderr)
	}
	mpath := filepath.Join(dist, "manifest.json")
	m, err := manifest.Decode(readFile(t, mpath))
	if err != nil {
		t.Fatal(err)
	}
	return m, mpath
}

// selftestHandler prints the self-test line after importing pure-Python
// packages of the realistic tree, from the deps layer.
const selftestHandler = `import os, sys
import requests, cloudpickle
top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(top, ".version")) as f:
    print("flash-worker %s ok python %d.%d" % ((f.read().strip(),) + sys.version_info[:2]))
`

// telemetryBytes is the bytes= of the start script's telemetry line for
// version, or -1.
func telemetryBytes(out, version string) int64 {
	m := regexp.MustCompile(`(?m)^flash-worker: ` + regexp.QuoteMeta(version) + ` cache=\S+ bytes=([0-9]+)`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// The layered start script (inject --layers) in real containers on one
// network volume (a host directory): v1 boots, downloading its layers;
// v2, where only the worker's own files changed, keeps the deps layer's
// digest, and a new container of it downloads at most 10% of v2's
// tarball, as counted at the download server and as its telemetry line
// says; and a new container of v2 with the server gone boots from the
// volume.
func TestContainerLayeredStartScriptUpgrade(t *testing.T) {
	rt := containertest.New(t)
	img := rt.BaseImage(t, "slim-3.11") // python3 is its only downloader
	srv := testserver.StartS3(t, "releases")
	publicRead(t, srv, "releases")
	counter := countBytes(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	dir := t.TempDir()
	// The realistic dependency tree and a handler that imports from it.
	os.MkdirAll(filepath.Join(dir, "src", "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "src", "handler.py"), []byte(selftestHandler), 0o644)
	cfg := depsDirConfig(t, filepath.Join(dir, "src"), realisticTree(t), map[string]any{"files": []map[string]any{
		{"src": "scripts/bootstrap.sh", "dst": "bootstrap.sh", "mode": "0755"}, {"src": "src/handler.py", "dst": "src/"}}})
	endpoint := "http://" + counter.host
	pub := filepath.Join(dir, "release.pub")
	const id = "py3.11-cpu-linux-x86_64"
	vol := filepath.Join(dir, "runpod-volume")
	os.Mkdir(vol, 0o777)

	boot := func(what, mpath, version string) string {
		t.Helper()
		r := run(t, dir, nil, "--allow-insecure", "inject", "--layers", "--manifest", mpath, "--key", pub, "--target", id)
		if r.code != 0 {
			t.Fatalf("%s: inject --layers: exit %d\n%s", what, r.code, r.stderr)
		}
		res := rt.Run(t, containertest.Options{
			Image: img, Cmd: []string{"bash", "-c", r.stdout},
			Env:     map[string]string{"FLASH_WORKER_SELFTEST": "1"},
			Volumes: []string{vol + ":/runpod-volume"},
		})
		out := res.Stdout + res.Stderr
		if res.Code != 0 || !strings.HasSuffix(res.Stdout, "flash-worker "+version+" ok python 3.11\n") {
			t.Fatalf("%s: exit %d\n%s", what, res.Code, out)
		}
		return out
	}

	m1, path1 := layeredRelease(t, dir, cfg, endpoint, srv.Env(), "1.0.0")
	a1, _ := m1.Find(id)
	if len(a1.Layers) != 2 || len(a1.Layers[0].URLs) != 1 || !strings.HasPrefix(a1.Layers[0].URLs[0], endpoint+"/") {
		t.Fatalf("v1 layers %+v, want two, each on the S3 channel", a1.Layers)
	}
	counter.bytes.Store(0)
	out := boot("v1 cold", path1, "1.0.0")
	v1Bytes := counter.bytes.Swap(0)
	if want := a1.Layers[0].Size + a1.Layers[1].Size; v1Bytes != want || telemetryBytes(out, "1.0.0") != want {
		t.Errorf("v1 cold: the server sent %d bytes, the telemetry says %d; want both layers, %d bytes\n%s", v1Bytes, telemetryBytes(out, "1.0.0"), want, out)
	}

	boot2 := filepath.Join(dir, "src", "scripts", "bootstrap.sh")
	os.WriteFile(boot2, append(readFile(t, boot2), "# 1.0.1: the worker changed\n"...), 0o755)
	m2, path2 := layeredRelease(t, dir, cfg, endpoint, srv.Env(), "1.0.1")
	a2, _ := m2.Find(id)
	if a2.Layers[0].Name != "deps" || a2.Layers[0].Digest != a1.Layers[0].Digest {
		t.Errorf("deps layer %+v, then %+v: the dependencies did not change", a1.Layers[0], a2.Layers[0])
	}
	if a2.Layers[1].Digest == a1.Layers[1].Digest {
		t.Errorf("worker layer %s unchanged although bootstrap.sh and .version changed", a2.Layers[1].Digest)
	}

	counter.bytes.Store(0)
	out = boot("v2 upgrade", path2, "1.0.1")
	v2Bytes, said := counter.bytes.Load(), telemetryBytes(out, "1.0.1")
	t.Logf("v2 tarball %d bytes (deps layer %d, worker layer %d); the upgrade downloaded %d bytes (%.2f%% of the tarball), the telemetry line says bytes=%d; v1 cold downloaded %d",
		a2.Size, a2.Layers[0].Size, a2.Layers[1].Size, v2Bytes, 100*float64(v2Bytes)/float64(a2.Size), said, v1Bytes)
	if v2Bytes > a2.Size/10 {
		t.Errorf("the upgrade downloaded %d bytes, over 10%% of the %d-byte tarball", v2Bytes, a2.Size)
	}
	if v2Bytes == 0 || v2Bytes != said {
		t.Errorf("the server sent %d bytes, the telemetry line says bytes=%d; want the same, and the new worker layer fetched\n%s", v2Bytes, said, out)
	}

	// The server gone: a new container of v2 boots from the volume alone.
	counter.srv.Close()
	out = boot("v2 with the server closed", path2, "1.0.1")
	if said := telemetryBytes(out, "1.0.1"); said != 0 {
		t.Errorf("v2 from the volume: the telemetry line says bytes=%d, want 0\n%s", said, out)
	}
}
