package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/pin"
)

// A fixture SDK of the real one's shape: the constants module with the
// pinned version and URL template, and an injection generator that builds
// dockerArgs from the generated module.
var sdkFiles = map[string]string{
	"src/runpod_flash/__init__.py":                "",
	"src/runpod_flash/core/__init__.py":           "",
	"src/runpod_flash/core/resources/__init__.py": "",
	pin.ConstantsFile: `"""SDK constants."""

import os

FLASH_CPU_BASE_IMAGE = os.environ.get("FLASH_CPU_BASE_IMAGE", "python:3.11-slim")

# Worker tarball for process injection
FLASH_WORKER_VERSION = os.environ.get("FLASH_WORKER_VERSION", "1.1.1")
FLASH_WORKER_TARBALL_URL_TEMPLATE = os.environ.get(
    "FLASH_WORKER_TARBALL_URL",
    "https://github.com/runpod-workers/flash/releases/download/"
    "v{version}/flash-worker-v{version}-py3.11-linux-x86_64.tar.gz",
)
DEFAULT_WORKERS_MIN = 0
`,
	"src/runpod_flash/core/resources/injection.py": `"""Process injection: the endpoint template's dockerArgs."""

from . import flash_worker_release as release
from .constants import FLASH_WORKER_VERSION


def build_injection_cmd(python: str = "3.11", accel: str = "cpu", arch: str = "x86_64") -> str:
    if FLASH_WORKER_VERSION != release.VERSION:
        raise RuntimeError("FLASH_WORKER_VERSION %s is not the pinned release %s" % (FLASH_WORKER_VERSION, release.VERSION))
    return release.docker_args(python, accel, arch)
`,
}

// What the SDK's CI would assert of the generated module, run by each
// Python: the API, shlex's reading of docker_args, LookupError.
const sdkCheck = `import shlex, sys
from runpod_flash.core.resources import flash_worker_release as rel, injection
py = "%d.%d" % sys.version_info[:2]
tid = rel.target_id(py)
assert tid == "py%s-cpu-linux-x86_64" % py, tid
assert rel.VERSION == "1.2.0" and rel.ARTIFACTS[tid]["python"] == py, rel.ARTIFACTS[tid]
assert rel.ARTIFACTS[tid]["urls"][0].startswith("https://"), rel.ARTIFACTS[tid]
args = injection.build_injection_cmd(py)
assert shlex.split(args) == ["bash", "-c", rel.start_script(py)], args
try:
    rel.start_script("3.9")
    raise SystemExit("no LookupError")
except LookupError as e:
    assert "py3.10-cpu-linux-x86_64" in str(e), e
with open(sys.argv[1], "w") as f:
    f.write(args)
with open(sys.argv[2], "w") as f:
    f.write(rel.start_script(py))
`

func TestPinSDKModule(t *testing.T) {
	rel := httpsRelease(t)
	dir := t.TempDir()
	sdk := filepath.Join(dir, "sdk")
	for name, body := range sdkFiles {
		os.MkdirAll(filepath.Dir(filepath.Join(sdk, name)), 0o755)
		os.WriteFile(filepath.Join(sdk, name), []byte(body), 0o644)
	}
	constants := filepath.Join(sdk, pin.ConstantsFile)
	pinCmd := func(extra ...string) result {
		return run(t, dir, rel.env(), append([]string{"pin", "--manifest", rel.manifest, "--sdk", sdk, "--key", rel.pub}, extra...)...)
	}

	if r := pinCmd("--check"); r.code != 1 || !strings.Contains(r.stderr, "not pinned to this release") {
		t.Errorf("--check before pinning: exit %d, %s", r.code, r.stderr)
	}
	if r := pinCmd(); r.code != 0 {
		t.Fatalf("pin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := pinCmd("--check"); r.code != 0 {
		t.Errorf("--check after pinning: exit %d, %s", r.code, r.stderr)
	}
	got, _ := os.ReadFile(constants)
	want := strings.Replace(sdkFiles[pin.ConstantsFile], `"FLASH_WORKER_VERSION", "1.1.1")`, `"FLASH_WORKER_VERSION", "1.2.0")`, 1)
	if string(got) != want {
		t.Errorf("constants.py: only the FLASH_WORKER_VERSION line may change; got\n%s", got)
	}

	for _, v := range []string{"3.10", "3.11", "3.12", "3.13"} {
		t.Run(v, func(t *testing.T) {
			py := python(t, v)
			argsFile, scriptFile := filepath.Join(t.TempDir(), "docker-args"), filepath.Join(t.TempDir(), "script")
			if out, err := exec.Command(py, "-I", "-c", "import sys; sys.path.insert(0, sys.argv.pop()); exec(sys.argv.pop())",
				argsFile, scriptFile, sdkCheck, filepath.Join(sdk, "src")).CombinedOutput(); err != nil {
				t.Fatalf("the SDK with Python %s: %v\n%s", v, err, out)
			}
			// The module's script is inject's, byte for byte.
			id := "py" + v + "-cpu-linux-x86_64"
			script, _ := os.ReadFile(scriptFile)
			r := run(t, dir, rel.env(), "inject", "--manifest", rel.manifest, "--key", rel.pub, "--target", id)
			if r.code != 0 || r.stdout != string(script) {
				t.Errorf("start_script(%q) differs from fwrelease inject's (exit %d, %s)", v, r.code, r.stderr)
			}
			dockerArgs, _ := os.ReadFile(argsFile)
			r = run(t, dir, rel.env(), "inject", "--manifest", rel.manifest, "--key", rel.pub, "--target", id, "--docker-args")
			if r.stdout != string(dockerArgs)+"\n" {
				t.Errorf("docker_args(%q) differs from fwrelease inject --docker-args", v)
			}

			// sh (dash) runs the dockerArgs as a container would, with
			// /opt a tmpfs of its own (the script's default --fw-dir) and
			// no network volume.
			unshare := []string{"/usr/bin/unshare", "-m"}
			if os.Geteuid() != 0 {
				unshare = append(unshare, "-r")
			}
			boot := exec.Command(unshare[0], append(unshare[1:], "/bin/sh", "-c",
				`mount -t tmpfs tmpfs /opt && exec env PATH="$FW_PATH" /bin/dash -c "$DOCKER_ARGS"`)...)
			boot.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FW_PATH=" + toolbox(t, py, images["curl"]...),
				"DOCKER_ARGS=" + string(dockerArgs), "FLASH_WORKER_SELFTEST=1"}, rel.env()...)
			var out bytes.Buffer
			boot.Stdout, boot.Stderr = &out, &out
			if err := boot.Run(); err != nil || !strings.HasSuffix(out.String(), booted(v)) {
				t.Errorf("sh -c \"$DOCKER_ARGS\": %v\n%s", err, out.String())
			}
		})
	}

	// A release that does not verify is never pinned, and changes nothing.
	os.WriteFile(constants, []byte(sdkFiles[pin.ConstantsFile]), 0o644)
	other := filepath.Join(dir, "other.json")
	data, _ := os.ReadFile(rel.manifest)
	os.WriteFile(other, bytes.Replace(data, []byte(`"size": `), []byte(`"size": 1`), 1), 0o644)
	sig, _ := os.ReadFile(rel.manifest + ".sigstore.json")
	os.WriteFile(other+".sigstore.json", sig, 0o644)
	if r := run(t, dir, rel.env(), "pin", "--manifest", other, "--sdk", sdk, "--key", rel.pub); r.code != 1 || !strings.Contains(r.stderr, "not pinning") {
		t.Errorf("pin of a tampered manifest: exit %d, %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(constants); string(got) != sdkFiles[pin.ConstantsFile] {
		t.Errorf("a failed pin changed constants.py")
	}
}

// A snapshot's URLs are file:// only: nothing a container can fetch, so
// pin refuses it rather than write a module that cannot work.
func TestPinRefusesFileURLs(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	sdk := filepath.Join(dir, "sdk")
	os.MkdirAll(filepath.Dir(filepath.Join(sdk, pin.ConstantsFile)), 0o755)
	os.WriteFile(filepath.Join(sdk, pin.ConstantsFile), []byte(sdkFiles[pin.ConstantsFile]), 0o644)
	r := run(t, dir, nil, "pin", "--manifest", filepath.Join(s.dist, "manifest.json"), "--sdk", sdk, "--key", filepath.Join(s.dist, "snapshot.pub"))
	if r.code != 1 || !strings.Contains(r.stderr, "no usable URL") || !strings.Contains(r.stderr, "file://") {
		t.Errorf("pin of a snapshot: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Join(sdk, pin.ConstantsFile)), pin.ModuleFile)); err == nil {
		t.Errorf("a refused pin wrote the module")
	}
}
