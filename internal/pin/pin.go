// Package pin points the SDK at a release: it rewrites the default of
// FLASH_WORKER_VERSION in the SDK's constants and writes beside them the
// generated module the injection generator imports (docs/sdk.md).
package pin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/runpod-workers/fwrelease/internal/atomicfile"
	"github.com/runpod-workers/fwrelease/internal/inject"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// ConstantsFile is where the SDK keeps FLASH_WORKER_VERSION.
const ConstantsFile = "src/runpod_flash/core/resources/constants.py"

// ModuleFile is written beside ConstantsFile.
const ModuleFile = "flash_worker_release.py"

// ErrOutOfDate is returned by Check when the SDK pins another release.
var ErrOutOfDate = errors.New("the SDK is not pinned to this release")

// The assignment line, whatever its right-hand side (a literal, or
// os.environ.get("FLASH_WORKER_VERSION", "1.1.1")); the version is the last
// quoted X.Y.Z on it.
var (
	assignRE  = regexp.MustCompile(`(?m)^[ \t]*FLASH_WORKER_VERSION\b[^=\n]*=[^\n]*$`)
	versionRE = regexp.MustCompile(`(["'])[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*(["'])`)
)

// Release is what a pin is made from: a verified manifest and its digest.
type Release struct {
	Manifest      *manifest.Manifest
	SHA256        string // of the manifest's bytes, named in the module's header
	AllowInsecure bool   // pin loopback http URLs too (tests)
}

// Files are the two files a pin writes, by path. Constants is nil when the
// SDK has no FLASH_WORKER_VERSION constant: then only the module is pinned.
type Files struct {
	ConstantsPath, ModulePath string
	Constants, Module         []byte
}

// ModuleOnly reports whether the pin leaves the constants alone.
func (f *Files) ModuleOnly() bool { return f.Constants == nil }

// Plan computes the new constants file and module for sdkDir.
func Plan(sdkDir string, r Release) (*Files, error) {
	if err := inject.ValidVersion(r.Manifest.Version); err != nil {
		return nil, err
	}
	f := &Files{ConstantsPath: filepath.Join(sdkDir, ConstantsFile)}
	f.ModulePath = filepath.Join(filepath.Dir(f.ConstantsPath), ModuleFile)
	if fi, err := os.Stat(filepath.Dir(f.ModulePath)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not the SDK's checkout: no directory %s", sdkDir, filepath.Dir(ConstantsFile))
	}
	old, err := os.ReadFile(f.ConstantsPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the SDK's constants: %w", err)
	case len(assignRE.FindAllIndex(old, -1)) > 0:
		if f.Constants, err = setVersion(f.ConstantsPath, old, r.Manifest.Version); err != nil {
			return nil, err
		}
	}
	if f.Module, err = module(r); err != nil {
		return nil, err
	}
	return f, nil
}

// setVersion replaces the quoted version on the one FLASH_WORKER_VERSION
// line, and nothing else.
func setVersion(path string, old []byte, version string) ([]byte, error) {
	lines := assignRE.FindAllIndex(old, -1)
	if len(lines) != 1 {
		return nil, fmt.Errorf("%s: want exactly one FLASH_WORKER_VERSION assignment, found %d", path, len(lines))
	}
	start, end := lines[0][0], lines[0][1]
	line := old[start:end]
	vs := versionRE.FindAllIndex(line, -1)
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: the FLASH_WORKER_VERSION line has no quoted version: %s", path, line)
	}
	last := vs[len(vs)-1]
	quote := string(line[last[0]])
	var b bytes.Buffer
	b.Write(old[:start+last[0]])
	b.WriteString(quote + version + quote)
	b.Write(old[start+last[1]:])
	return b.Bytes(), nil
}

// Write applies the plan, each file replaced whole.
func Write(f *Files) error {
	if !f.ModuleOnly() {
		if err := atomicfile.Write(f.ConstantsPath, f.Constants, 0o644); err != nil {
			return err
		}
	}
	return atomicfile.Write(f.ModulePath, f.Module, 0o644)
}

// Check reports ErrOutOfDate, naming the files, when the SDK differs.
func Check(f *Files) error {
	var stale []string
	want := map[string][]byte{f.ModulePath: f.Module}
	if !f.ModuleOnly() {
		want[f.ConstantsPath] = f.Constants
	}
	for path, want := range want {
		have, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(have, want) {
			stale = append(stale, path)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		return fmt.Errorf("%w: %s differ; run fwrelease pin", ErrOutOfDate, strings.Join(stale, ", "))
	}
	return nil
}

type moduleArtifact struct {
	ID, Python, Accel, Arch, File, SHA256, Script, OverrideScript string
	Size                                                          int64
	URLs                                                          []string
	LayeredScript                                                 *string           // nil: no layers a container can download
	Mount                                                         string            // "" when none
	Overlay                                                       map[string]string // base → reference
}

// layeredScript is a's start script fetching its layers, as `fwrelease
// inject --layers` prints it; nil when the manifest lists no layers, or
// none that a container can download (a snapshot's file:// URLs).
func layeredScript(version string, a *manifest.Artifact, allowInsecure bool) (*string, error) {
	if len(a.Layers) == 0 {
		return nil, nil
	}
	script, err := inject.Script(version, a, inject.Options{AllowInsecure: allowInsecure, Layers: true})
	if errors.Is(err, inject.ErrNoURL) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &script, nil
}

// images are the artifact's image references that a host can pull: a
// snapshot's, in a local OCI layout (an absolute path), are not.
func images(a *manifest.Artifact) (mount string, overlay map[string]string) {
	pullable := func(ref string) bool { return ref != "" && !strings.HasPrefix(ref, "/") }
	overlay = map[string]string{}
	if a.Images == nil {
		return "", overlay
	}
	if pullable(a.Images.Mount) {
		mount = a.Images.Mount
	}
	for base, ref := range a.Images.Overlay {
		if pullable(ref) {
			overlay[base] = ref
		}
	}
	return mount, overlay
}

// The override script of a target is its start script rendered for a
// tarball named by these slots, which the module fills at run time with
// FLASH_WORKER_TARBALL_URL and FLASH_WORKER_TARBALL_SHA256. Both pass
// inject's checks, and the values the module puts there pass the same.
const (
	urlSlot    = "https://flash-worker-tarball-url.invalid/FLASH_WORKER_TARBALL_URL"
	sha256Slot = "5ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba25ba2"
)

// overrideMaxSize bounds an override's download, whose size nobody
// recorded: four times the pinned tarball of the target, at least 1 GiB.
func overrideMaxSize(pinned int64) int64 {
	return max(4*pinned, 1<<30)
}

// overrideScript renders a's start script with the override's slots.
func overrideScript(version string, a manifest.Artifact, allowInsecure bool) (string, error) {
	a.SHA256, a.Size, a.URLs = sha256Slot, overrideMaxSize(a.Size), []string{urlSlot}
	script, err := inject.Script(version, &a, inject.Options{URLs: []string{urlSlot}, AllowInsecure: allowInsecure})
	if err != nil {
		return "", err
	}
	if !strings.Contains(script, urlSlot) || !strings.Contains(script, sha256Slot) {
		return "", errors.New("the start script does not hold the tarball's URL and sha256 where an override can replace them")
	}
	return script, nil
}

// module renders the generated Python module: every target's data and its
// start script, rendered here by the same template `fwrelease inject` uses.
func module(r Release) ([]byte, error) {
	var arts []moduleArtifact
	for i := range r.Manifest.Artifacts {
		a := &r.Manifest.Artifacts[i]
		urls, err := inject.URLs(a, r.AllowInsecure)
		if err != nil {
			return nil, fmt.Errorf("not pinning: %w", err)
		}
		script, err := inject.Script(r.Manifest.Version, a, inject.Options{URLs: urls, AllowInsecure: r.AllowInsecure})
		if err != nil {
			return nil, fmt.Errorf("not pinning target %s: %w", a.Target.ID, err)
		}
		override, err := overrideScript(r.Manifest.Version, *a, r.AllowInsecure)
		if err != nil {
			return nil, fmt.Errorf("not pinning target %s: %w", a.Target.ID, err)
		}
		layered, err := layeredScript(r.Manifest.Version, a, r.AllowInsecure)
		if err != nil {
			return nil, fmt.Errorf("not pinning target %s: %w", a.Target.ID, err)
		}
		mount, overlay := images(a)
		arts = append(arts, moduleArtifact{
			ID: a.Target.ID, Python: a.Target.Python, Accel: a.Target.Accel, Arch: a.Target.Arch,
			File: a.File, SHA256: a.SHA256, Size: a.Size, URLs: urls, Script: script, OverrideScript: override,
			LayeredScript: layered, Mount: mount, Overlay: overlay,
		})
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].ID < arts[j].ID })
	var b bytes.Buffer
	err := moduleTemplate.Execute(&b, map[string]any{
		"Version": r.Manifest.Version, "ManifestSHA256": r.SHA256, "Artifacts": arts,
		"URLSlot": urlSlot, "SHA256Slot": sha256Slot, "LoopbackHTTP": r.AllowInsecure,
	})
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", ModuleFile, err)
	}
	return b.Bytes(), nil
}

// py writes a string or list of strings as a Python literal. JSON's string
// escapes are all valid in Python; HTML escaping is turned off so the
// scripts read as they run.
func py(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

var moduleTemplate = template.Must(template.New("module").Funcs(template.FuncMap{"py": py}).Parse(moduleText))

const moduleText = `# Generated by fwrelease pin from the flash-worker {{.Version}} release manifest
# (sha256:{{.ManifestSHA256}}). Do not edit: run fwrelease pin again.
"""The pinned flash-worker release: each target's tarball and the container
start script that downloads it, checks its sha256, caches it by content on
the network volume and runs it; and the worker's OCI images, by digest.

The SDK's environment overrides are honoured, never ignored: a
FLASH_WORKER_VERSION other than VERSION is an error, and
FLASH_WORKER_TARBALL_URL (an unreleased tarball; "{version}" in it is
VERSION) is used only with FLASH_WORKER_TARBALL_SHA256, its sha256."""

import os
import re
import urllib.parse

VERSION = {{py .Version}}

ARTIFACTS = {
{{- range .Artifacts}}
    {{py .ID}}: {
        "python": {{py .Python}},
        "accel": {{py .Accel}},
        "arch": {{py .Arch}},
        "file": {{py .File}},
        "size": {{.Size}},
        "sha256": {{py .SHA256}},
        "urls": {{py .URLs}},
    },
{{- end}}
}

_IMAGES = {
{{- range .Artifacts}}
    {{py .ID}}: {"mount": {{py .Mount}}, "overlay": {{py .Overlay}}},
{{- end}}
}

_START_SCRIPTS = {
{{- range .Artifacts}}
    {{py .ID}}: {{py .Script}},
{{- end}}
}

# The scripts that fetch each target's layers instead of its tarball
# (None: no layers a container can download).
_LAYERED_SCRIPTS = {
{{- range .Artifacts}}
    {{py .ID}}: {{if .LayeredScript}}{{py .LayeredScript}}{{else}}None{{end}},
{{- end}}
}

# The same scripts for a tarball given by the environment: the slots below
# are replaced by its URL and sha256.
_OVERRIDE_SCRIPTS = {
{{- range .Artifacts}}
    {{py .ID}}: {{py .OverrideScript}},
{{- end}}
}
_URL_SLOT = {{py .URLSlot}}
_SHA256_SLOT = {{py .SHA256Slot}}
_LOOPBACK_HTTP = {{if .LoopbackHTTP}}True{{else}}False{{end}}
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#@!&+,;=%-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class OverrideError(ValueError):
    """An environment override that this pinned release cannot honour."""


def target_id(python: str, accel: str = "cpu", arch: str = "x86_64") -> str:
    """The target ID for a Python version, accelerator and architecture."""
    tid = "py%s-%s-linux-%s" % (python, accel, arch)
    if tid not in ARTIFACTS:
        raise LookupError(
            "flash-worker %s has no target %s; it has: %s" % (VERSION, tid, ", ".join(sorted(ARTIFACTS)))
        )
    return tid


def tarball_override():
    """(url, sha256) from FLASH_WORKER_TARBALL_URL and FLASH_WORKER_TARBALL_SHA256,
    or None; OverrideError when the environment asks for what cannot be done."""
    version = os.environ.get("FLASH_WORKER_VERSION", "")
    if version and version != VERSION:
        raise OverrideError(
            "FLASH_WORKER_VERSION is %s, but this SDK is pinned to flash-worker %s: unset it, or run "
            "fwrelease pin with the %s release (an unreleased tarball: FLASH_WORKER_TARBALL_URL and "
            "FLASH_WORKER_TARBALL_SHA256)" % (version, VERSION, version)
        )
    url = os.environ.get("FLASH_WORKER_TARBALL_URL", "").replace("{version}", VERSION)
    sha256 = os.environ.get("FLASH_WORKER_TARBALL_SHA256", "").lower()
    if not url:
        if sha256:
            raise OverrideError("FLASH_WORKER_TARBALL_SHA256 is set without FLASH_WORKER_TARBALL_URL; set both or neither")
        return None
    if not sha256:
        raise OverrideError(
            "FLASH_WORKER_TARBALL_URL is set, but not FLASH_WORKER_TARBALL_SHA256: the start script runs a "
            "tarball only if its sha256 is known; set FLASH_WORKER_TARBALL_SHA256 to the tarball's sha256"
        )
    if not _SHA256.fullmatch(sha256):
        raise OverrideError("FLASH_WORKER_TARBALL_SHA256 is not 64 hex digits")
    parts = urllib.parse.urlsplit(url) if _URL_CHARS.fullmatch(url) else None
    loopback = parts is not None and parts.scheme == "http" and _LOOPBACK_HTTP and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if url.startswith("-") or parts is None or not parts.netloc or not (parts.scheme == "https" or loopback):
        raise OverrideError(
            "FLASH_WORKER_TARBALL_URL must be an https URL of plain URL characters (no quotes, spaces, dollars or backticks)"
        )
    return url, sha256


def start_script(python: str, accel: str = "cpu", arch: str = "x86_64", layers: bool = False) -> str:
    """The script a container runs at start: download, verify, cache, exec.

    With layers=True it fetches the target's layers instead of its tarball,
    each checked by digest and cached on the network volume, so an upgrade
    whose dependencies did not change downloads only the worker layer; a
    LookupError when the release has no layers a container can download.
    FLASH_WORKER_TARBALL_URL, when set, wins: the override tarball is fetched
    whole, layers or not."""
    tid = target_id(python, accel, arch)
    override = tarball_override()
    if override is None:
        if not layers:
            return _START_SCRIPTS[tid]
        if _LAYERED_SCRIPTS[tid] is None:
            raise LookupError("flash-worker %s publishes no layers of %s that a container can download" % (VERSION, tid))
        return _LAYERED_SCRIPTS[tid]
    url, sha256 = override
    return _OVERRIDE_SCRIPTS[tid].replace(_URL_SLOT, url).replace(_SHA256_SLOT, sha256)


def docker_args(python: str, accel: str = "cpu", arch: str = "x86_64", layers: bool = False) -> str:
    """The endpoint template's dockerArgs: bash -c and the quoted start
    script (with layers=True, the layered one; see start_script)."""
    return "bash -c '" + start_script(python, accel, arch, layers).replace("'", "'\"'\"'") + "'"


def image(python: str, accel: str = "cpu", arch: str = "x86_64", base=None) -> str:
    """The overlay image, the worker on its base image (the accelerator's
    unless base names another), by digest: the template's imageName."""
    tid = target_id(python, accel, arch)
    overlays = _IMAGES[tid]["overlay"]
    key = accel if base is None else base
    if key not in overlays:
        raise LookupError(
            "flash-worker %s has no overlay image of %s on base %s; it has: %s"
            % (VERSION, tid, key, ", ".join(sorted(overlays)) or "none")
        )
    return overlays[key]


def mount(python: str, accel: str = "cpu", arch: str = "x86_64") -> str:
    """The worker image to mount at /opt/flash-worker (an image mount or
    image volume onto any base image), by digest."""
    tid = target_id(python, accel, arch)
    ref = _IMAGES[tid]["mount"]
    if not ref:
        raise LookupError("flash-worker %s has no mount image of %s" % (VERSION, tid))
    return ref
`
