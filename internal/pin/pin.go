// Package pin points the SDK at a release: it rewrites the default of
// FLASH_WORKER_VERSION in the SDK's constants and writes beside them the
// generated module the injection generator imports (docs/sdk.md).
package pin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// Files are the two files a pin writes, by path.
type Files struct {
	ConstantsPath, ModulePath string
	Constants, Module         []byte
}

// Plan computes the new constants file and module for sdkDir.
func Plan(sdkDir string, r Release) (*Files, error) {
	if err := inject.ValidVersion(r.Manifest.Version); err != nil {
		return nil, err
	}
	f := &Files{ConstantsPath: filepath.Join(sdkDir, ConstantsFile)}
	f.ModulePath = filepath.Join(filepath.Dir(f.ConstantsPath), ModuleFile)
	old, err := os.ReadFile(f.ConstantsPath)
	if err != nil {
		return nil, fmt.Errorf("reading the SDK's constants: %w", err)
	}
	if f.Constants, err = setVersion(f.ConstantsPath, old, r.Manifest.Version); err != nil {
		return nil, err
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
	if err := atomicfile.Write(f.ConstantsPath, f.Constants, 0o644); err != nil {
		return err
	}
	return atomicfile.Write(f.ModulePath, f.Module, 0o644)
}

// Check reports ErrOutOfDate, naming the files, when the SDK differs.
func Check(f *Files) error {
	var stale []string
	for path, want := range map[string][]byte{f.ConstantsPath: f.Constants, f.ModulePath: f.Module} {
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
	ID, Python, Accel, Arch, File, SHA256, Script string
	Size                                          int64
	URLs                                          []string
	Mount                                         string            // "" when none
	Overlay                                       map[string]string // base → reference
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
		mount, overlay := images(a)
		arts = append(arts, moduleArtifact{
			ID: a.Target.ID, Python: a.Target.Python, Accel: a.Target.Accel, Arch: a.Target.Arch,
			File: a.File, SHA256: a.SHA256, Size: a.Size, URLs: urls, Script: script,
			Mount: mount, Overlay: overlay,
		})
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].ID < arts[j].ID })
	var b bytes.Buffer
	err := moduleTemplate.Execute(&b, map[string]any{
		"Version": r.Manifest.Version, "ManifestSHA256": r.SHA256, "Artifacts": arts,
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
the network volume and runs it; and the worker's OCI images, by digest."""

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


def target_id(python: str, accel: str = "cpu", arch: str = "x86_64") -> str:
    """The target ID for a Python version, accelerator and architecture."""
    tid = "py%s-%s-linux-%s" % (python, accel, arch)
    if tid not in ARTIFACTS:
        raise LookupError(
            "flash-worker %s has no target %s; it has: %s" % (VERSION, tid, ", ".join(sorted(ARTIFACTS)))
        )
    return tid


def start_script(python: str, accel: str = "cpu", arch: str = "x86_64") -> str:
    """The script a container runs at start: download, verify, cache, exec."""
    return _START_SCRIPTS[target_id(python, accel, arch)]


def docker_args(python: str, accel: str = "cpu", arch: str = "x86_64") -> str:
    """The endpoint template's dockerArgs: bash -c and the quoted start script."""
    return "bash -c '" + start_script(python, accel, arch).replace("'", "'\"'\"'") + "'"


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
