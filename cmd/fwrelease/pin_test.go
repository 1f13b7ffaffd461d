package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
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
layered = rel.docker_args(py, layers=True)
assert shlex.split(layered) == ["bash", "-c", rel.start_script(py, "cpu", "x86_64", layers=True)], layered
assert layered != args, "layers=True gave the tarball's script"
with open(sys.argv[3], "w") as f:
    f.write(layered)
`

// The SDK's environment overrides, as the SDK's CI would check them with
// each Python: a FLASH_WORKER_VERSION other than the pinned one is an
// error naming both; FLASH_WORKER_TARBALL_URL ("{version}" in it filled
// in) is taken only with FLASH_WORKER_TARBALL_SHA256, and then replaces the
// URLs and the digest of the start script. argv: url sha256 out.
const sdkOverridesCheck = `import os, shlex, sys
from runpod_flash.core.resources import flash_worker_release as rel
py = "%d.%d" % sys.version_info[:2]
url, sha256, out = sys.argv[1:4]
pinned = rel.start_script(py)
clean = dict(os.environ)

def refused(**env):
    os.environ.clear(); os.environ.update(clean); os.environ.update(env)
    try:
        rel.docker_args(py)
    except rel.OverrideError as e:
        assert isinstance(e, ValueError)
        return str(e)
    finally:
        os.environ.clear(); os.environ.update(clean)
    raise SystemExit("no OverrideError with %s" % env)

e = refused(FLASH_WORKER_VERSION="1.1.1")
assert "1.1.1" in e and rel.VERSION in e, e
e = refused(FLASH_WORKER_TARBALL_URL=url)
assert "FLASH_WORKER_TARBALL_SHA256" in e, e
e = refused(FLASH_WORKER_TARBALL_SHA256=sha256)
assert "FLASH_WORKER_TARBALL_URL" in e, e
for bad in ["http://example.com/fw.tar.gz", "file:///tmp/fw.tar.gz", "https://example.com/$(touch /tmp/x)",
            'https://example.com/"; touch /tmp/x; "', "-o/etc/passwd", "https://"]:
    refused(FLASH_WORKER_TARBALL_URL=bad, FLASH_WORKER_TARBALL_SHA256=sha256)
refused(FLASH_WORKER_TARBALL_URL=url, FLASH_WORKER_TARBALL_SHA256="ab" * 31)

os.environ["FLASH_WORKER_VERSION"] = rel.VERSION
assert rel.start_script(py) == pinned, "the pinned version set in the environment changed the script"
os.environ.update(FLASH_WORKER_TARBALL_URL=url, FLASH_WORKER_TARBALL_SHA256=sha256.upper())
script = rel.start_script(py)
want_url = url.replace("{version}", rel.VERSION)
assert script != pinned and want_url in script and sha256 in script, script
assert rel._URL_SLOT not in script and rel._SHA256_SLOT not in script, script
for u in rel.ARTIFACTS[rel.target_id(py)]["urls"]:
    assert u + " " not in script and u + '"' not in script, "the pinned URL %s is still tried" % u
args = rel.docker_args(py)
assert shlex.split(args) == ["bash", "-c", script], args
assert rel.start_script(py, layers=True) == script, "layers=True did not give way to the override tarball"
with open(out, "w") as f:
    f.write(args)
`

func TestPinSDKModule(t *testing.T) {
	t.Parallel()
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
			argsFile, scriptFile, layeredFile := filepath.Join(t.TempDir(), "docker-args"), filepath.Join(t.TempDir(), "script"), filepath.Join(t.TempDir(), "layered-args")
			if out, err := exec.Command(py, "-I", "-c", "import sys; sys.path.insert(0, sys.argv.pop()); exec(sys.argv.pop())",
				argsFile, scriptFile, layeredFile, sdkCheck, filepath.Join(sdk, "src")).CombinedOutput(); err != nil {
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
			layeredArgs, _ := os.ReadFile(layeredFile)
			r = run(t, dir, rel.env(), "inject", "--manifest", rel.manifest, "--key", rel.pub, "--target", id, "--docker-args", "--layers")
			if r.code != 0 || r.stdout != string(layeredArgs)+"\n" {
				t.Errorf("docker_args(%q, layers=True) differs from fwrelease inject --docker-args --layers (exit %d, %s)", v, r.code, r.stderr)
			}

			// sh (dash) runs the dockerArgs as a container would, with
			// /opt a tmpfs of its own (the script's default --fw-dir) and
			// no network volume.
			boot := func(dockerArgs string) (string, error) {
				unshare := []string{"/usr/bin/unshare", "-m"}
				if os.Geteuid() != 0 {
					unshare = append(unshare, "-r")
				}
				cmd := exec.Command(unshare[0], append(unshare[1:], "/bin/sh", "-c",
					`mount -t tmpfs tmpfs /opt && exec env PATH="$FW_PATH" /bin/dash -c "$DOCKER_ARGS"`)...)
				cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FW_PATH=" + toolbox(t, py, images["curl"]...),
					"DOCKER_ARGS=" + dockerArgs, "FLASH_WORKER_SELFTEST=1"}, rel.env()...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				return out.String(), err
			}
			if out, err := boot(string(dockerArgs)); err != nil || !strings.HasSuffix(out, booted(v)) {
				t.Errorf("sh -c \"$DOCKER_ARGS\": %v\n%s", err, out)
			}
			if out, err := boot(string(layeredArgs)); err != nil || !strings.HasSuffix(out, booted(v)) {
				t.Errorf("sh -c \"$DOCKER_ARGS\" of docker_args(layers=True): %v\n%s", err, out)
			}

			// A staging tarball by URL and sha256 (here the release's own,
			// under another URL) boots; one whose sha256 is not the one
			// given never runs.
			var a, other manifest.Artifact
			for _, x := range rel.m.Artifacts {
				if x.Target.ID == id {
					a = x
				} else {
					other = x
				}
			}
			staging := rel.server.URL + "/" + strings.Replace(a.File, "v1.2.0", "v{version}", 1) + "?staging=1"
			overridden := filepath.Join(t.TempDir(), "override-args")
			for _, c := range []struct {
				sha256 string
				boots  bool
			}{{a.SHA256, true}, {other.SHA256, false}} {
				if out, err := exec.Command(py, "-I", "-c", "import sys; sys.path.insert(0, sys.argv.pop()); exec(sys.argv.pop())",
					staging, c.sha256, overridden, sdkOverridesCheck, filepath.Join(sdk, "src")).CombinedOutput(); err != nil {
					t.Fatalf("the SDK's overrides with Python %s: %v\n%s", v, err, out)
				}
				args, _ := os.ReadFile(overridden)
				out, err := boot(string(args))
				if booted := err == nil && strings.HasSuffix(out, booted(v)); booted != c.boots {
					t.Errorf("FLASH_WORKER_TARBALL_URL with sha256 %s: booted %v, want %v: %v\n%s", c.sha256[:12], booted, c.boots, err, out)
				}
			}
		})
	}

	// An SDK without the constant gets the module only, and says so.
	noConst := strings.Replace(sdkFiles[pin.ConstantsFile], `FLASH_WORKER_VERSION = os.environ.get("FLASH_WORKER_VERSION", "1.1.1")`, "", 1)
	os.WriteFile(constants, []byte(noConst), 0o644)
	os.Remove(filepath.Join(filepath.Dir(constants), pin.ModuleFile))
	if r := pinCmd(); r.code != 0 || strings.Contains(r.stdout, pin.ConstantsFile) || !strings.Contains(r.stdout, pin.ModuleFile) || !strings.Contains(r.stderr, "module only") {
		t.Errorf("pin of an SDK without FLASH_WORKER_VERSION: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(constants); string(got) != noConst {
		t.Errorf("pin changed a constants.py without FLASH_WORKER_VERSION")
	}
	if r := pinCmd("--check"); r.code != 0 {
		t.Errorf("--check of a module-only pin: exit %d, %s", r.code, r.stderr)
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
	t.Parallel()
	dir := t.TempDir()
	s := sharedSnapshot(t)
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
