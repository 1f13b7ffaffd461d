package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/pin"
)

const constantsPy = `"""SDK constants."""

import os

# The worker version injected into endpoints.
FLASH_WORKER_VERSION = os.environ.get("FLASH_WORKER_VERSION", "1.1.1")
FLASH_WORKER_TARBALL_URL_TEMPLATE = "https://github.com/runpod-workers/flash/releases/download/v{version}/flash-worker-v{version}-py3.11-linux-x86_64.tar.gz"
OTHER_VERSION = "1.1.1"
`

func TestPin(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	mpath := filepath.Join(s.dist, "manifest.json")
	pub := filepath.Join(s.dist, "snapshot.pub")
	sdk := filepath.Join(dir, "sdk")
	constants := filepath.Join(sdk, pin.ConstantsFile)
	os.MkdirAll(filepath.Dir(constants), 0o755)
	os.WriteFile(constants, []byte(constantsPy), 0o644)

	if r := run(t, dir, nil, "pin", "--manifest", mpath, "--sdk", sdk, "--key", pub, "--check"); r.code != 1 || !strings.Contains(r.stderr, "not pinned to this release") {
		t.Errorf("--check before pinning: exit %d, %s", r.code, r.stderr)
	}
	r := run(t, dir, nil, "pin", "--manifest", mpath, "--sdk", sdk, "--key", pub)
	if r.code != 0 {
		t.Fatalf("pin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got, _ := os.ReadFile(constants)
	want := strings.Replace(constantsPy, `"FLASH_WORKER_VERSION", "1.1.1")`, `"FLASH_WORKER_VERSION", "1.2.0")`, 1)
	if string(got) != want {
		t.Errorf("constants.py: only the FLASH_WORKER_VERSION default may change; got\n%s", got)
	}
	table, _ := os.ReadFile(filepath.Join(filepath.Dir(constants), pin.TableFile))
	for _, a := range s.manifest.Artifacts {
		if !strings.Contains(string(table), a.SHA256) || !strings.Contains(string(table), `"`+a.Target.ID+`"`) {
			t.Errorf("the table lacks %s (%s)", a.Target.ID, a.SHA256)
		}
	}
	if r := run(t, dir, nil, "pin", "--manifest", mpath, "--sdk", sdk, "--key", pub, "--check"); r.code != 0 {
		t.Errorf("--check after pinning: exit %d, %s", r.code, r.stderr)
	}
	// A release that does not verify is never pinned.
	published := strings.TrimPrefix(s.manifest.Artifacts[0].URLs[0], "file://")
	os.WriteFile(published, []byte("garbage"), 0o644)
	os.WriteFile(constants, []byte(constantsPy), 0o644)
	if r := run(t, dir, nil, "pin", "--manifest", mpath, "--sdk", sdk, "--key", pub); r.code != 1 || !strings.Contains(r.stderr, "not pinning") {
		t.Errorf("pin of a broken release: exit %d, %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(constants); string(got) != constantsPy {
		t.Errorf("a failed pin changed constants.py")
	}
}
