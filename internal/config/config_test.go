package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/slimrule"
)

const minimal = `name: flash-worker
version: "1.2.0"
matrix:
  python: ["3.11"]
files:
  - {src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}
`

func TestParseMinimalDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "fwrelease.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Layout != "overlay" || c.Format != "tar.gz" || c.Matrix.Accel[0] != "cpu" || c.Matrix.Arch[0] != "x86_64" || !c.Slim.On() || c.Deps.Manylinux != "2_28" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.Layers) != 2 || c.Layers[0].Name != "deps" || c.Layers[0].Paths[0] != "site-packages/**" || c.Layers[1].Name != "worker" {
		t.Errorf("default layers: %+v", c.Layers)
	}
	if got := c.Targets(); len(got) != 1 || got[0].ID() != "py3.11-cpu-linux-x86_64" {
		t.Errorf("Targets() = %v", got)
	}
}

func TestParseFull(t *testing.T) {
	data := `name: flash-worker
version: {from: src/version.py}
source_date_epoch: 1767225600
source: {repository: runpod-workers/flash}
matrix:
  python: [3.10, "3.11", '3.12', 3.13]   # unquoted 3.10 is read as written, not as 3.1
  accel: [cpu, cu128]
  arch: [x86_64, aarch64]
  exclude: [{accel: cu128, arch: aarch64}]
layout: overlay
files:
  - {src: "src/*.py", dst: src/}
  - {src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}
  - {src: src/tests, dst: src/tests, optional: true}
extra_files:
  - url: https://github.com/astral-sh/uv/releases/download/0.7.19/uv-{arch}-unknown-linux-musl.tar.gz
    sha256: {x86_64: 1111111111111111111111111111111111111111111111111111111111111111, aarch64: 2222222222222222222222222222222222222222222222222222222222222222}
    extract: uv
    max_size: 64MiB
    mode: "0755"
  - {path: /opt/licenses/uv.txt, sha256: 3333333333333333333333333333333333333333333333333333333333333333, dst: licenses/uv.txt}
deps:
  requirements: requirements.txt
  find_links: [wheelhouse]
  no_index: true
  accel: {cu128: {extra_index_urls: ["https://download.pytorch.org/whl/cu128"]}}
slim:
  enabled: false
  exclude_packages: [torch, "nvidia-*"]
  keep: []
  max_size: 150MiB
  max_unpacked_size: 2GiB
  rules: {translations: true, symbol_tables: false}
format: tar.zst
sign: {key: cosign.key}
publish:
  local: {dir: dist/publish}
  s3: {bucket: releases, prefix: flash-worker, region: us-east-1, endpoint: "http://127.0.0.1:7070", path_style: true}
  github: {owner: runpod-workers, repo: flash, api_url: "https://api.github.com/", upload_url: "https://uploads.github.com/"}
  oci: {repository: ghcr.io/runpod-workers/flash-worker, plain_http: false}
`
	c, err := Parse([]byte(data), "fwrelease.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Matrix.Python, ","); got != "3.10,3.11,3.12,3.13" {
		t.Errorf("python = %s", got)
	}
	if n := len(c.Targets()); n != 4*2*2-4 {
		t.Errorf("%d targets, want 12", n)
	}
	if r := c.Slim.Rules; !r.On(slimrule.Translations) || r.On(slimrule.SymbolTables) || !r.On(slimrule.Tests) || (slimrule.Switches{}).On(slimrule.Translations) {
		t.Errorf("slim.rules decoded wrong: %+v", r)
	}
	if c.Slim.MaxSize != 150<<20 || c.Slim.MaxUnpackedSize != 2<<30 || c.ExtraFiles[0].MaxSize != 64<<20 || c.Slim.On() || c.Format != "tar.zst" || c.Version.From != "src/version.py" || *c.SourceDateEpoch != 1767225600 {
		t.Errorf("decoded wrong: %+v", c)
	}
	src, member, dst := c.ExtraFiles[0].Resolve("aarch64")
	if src != "https://github.com/astral-sh/uv/releases/download/0.7.19/uv-aarch64-unknown-linux-musl.tar.gz" || member != "uv" || dst != "uv" || c.ExtraFiles[0].SHA256.For("aarch64")[0] != '2' {
		t.Errorf("extra_files[0] for aarch64: %s %s %s %v", src, member, dst, c.ExtraFiles[0].SHA256)
	}
	if src, _, dst := c.ExtraFiles[1].Resolve("x86_64"); src != "/opt/licenses/uv.txt" || dst != "licenses/uv.txt" || c.ExtraFiles[1].SHA256.For("x86_64")[0] != '3' {
		t.Errorf("extra_files[1]: %s %s %v", src, dst, c.ExtraFiles[1].SHA256)
	}
	if c.Files[1].Optional || !c.Files[2].Optional {
		t.Errorf("files[].optional decoded wrong: %+v", c.Files)
	}
	if c.Publish.S3 == nil || !c.Publish.S3.PathStyle || c.Deps.Accel["cu128"].ExtraIndexURLs[0] != "https://download.pytorch.org/whl/cu128" {
		t.Errorf("nested keys decoded wrong: %+v %+v", c.Publish.S3, c.Deps.Accel)
	}
}

var hex64 = strings.Repeat("ab", 32)

// Each bad config must fail with a message naming file, line and key.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", minimal + "colour: blue\n", []string{`fwrelease.yaml:7: unknown key "colour"`}},
		{"unknown nested key", strings.Replace(minimal, "matrix:\n", "matrix:\n  pythons: [\"3.12\"]\n", 1), []string{`fwrelease.yaml:4: unknown key "matrix.pythons" (did you mean "python"?)`}},
		{"unknown key in a list item", strings.Replace(minimal, `mode: "0755"}`, `mode: "0755", chmod: x}`, 1), []string{`fwrelease.yaml:6: unknown key "files[0].chmod"`}},
		{"unknown key in version", strings.Replace(minimal, `version: "1.2.0"`, `version: {file: v.py}`, 1), []string{`fwrelease.yaml:2: unknown key "version.file"`}},
		{"wrong type", minimal + "source_date_epoch: yesterday\n", []string{"fwrelease.yaml:7: source_date_epoch: cannot unmarshal !!str `yesterday` into int64"}},
		{"wrong type for a list", strings.Replace(minimal, `python: ["3.11"]`, `python: "3.11"`, 1), []string{"fwrelease.yaml:4: matrix.python: cannot unmarshal !!str `3.11` into []string"}},
		{"bad version", strings.Replace(minimal, `"1.2.0"`, `"v1.2"`, 1), []string{`fwrelease.yaml:2: version: version "v1.2" is not a semantic version`}},
		{"missing version", strings.Replace(minimal, "version: \"1.2.0\"\n", "", 1), []string{`version: missing`}},
		{"bad python version", strings.Replace(minimal, `["3.11"]`, `["3.11", "3.9.1"]`, 1), []string{`fwrelease.yaml:4: matrix.python[1]: python version "3.9.1" is not of the form 3.N`}},
		{"python listed twice", strings.Replace(minimal, `["3.11"]`, `["3.11", "3.11"]`, 1), []string{`matrix.python[1]: "3.11" is listed twice`}},
		{"bad accel", strings.Replace(minimal, "matrix:\n", "matrix:\n  accel: [gpu]\n", 1), []string{`fwrelease.yaml:4: matrix.accel[0]: accelerator "gpu" is not "cpu"`}},
		{"bad arch", strings.Replace(minimal, "matrix:\n", "matrix:\n  arch: [arm64]\n", 1), []string{`fwrelease.yaml:4: matrix.arch[0]: architecture "arm64" is not one of x86_64, aarch64`}},
		{"exclude not in matrix", strings.Replace(minimal, "matrix:\n", "matrix:\n  exclude: [{accel: cu128}]\n", 1), []string{`matrix.exclude[0].accel: "cu128" is not in matrix.accel`}},
		{"exclude removes all", strings.Replace(minimal, "matrix:\n", "matrix:\n  exclude: [{python: \"3.11\"}]\n", 1), []string{`matrix.exclude: the excludes remove every target`}},
		{"bad layout", minimal + "layout: docker\n", []string{`fwrelease.yaml:7: layout: "docker" is not one of overlay, bundled`}},
		{"bad format", minimal + "format: zip\n", []string{`fwrelease.yaml:7: format: "zip" is not one of tar.gz, tar.zst`}},
		{"bad mode", strings.Replace(minimal, `"0755"`, `"rwx"`, 1), []string{`fwrelease.yaml:6: files[0].mode: "rwx" is not an octal permission`}},
		{"dst escapes", strings.Replace(minimal, `dst: bootstrap.sh`, `dst: ../bootstrap.sh`, 1), []string{`files[0].dst: "../bootstrap.sh" must be a relative path inside the tarball`}},
		{"no files", strings.Replace(minimal, "files:\n  - {src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: \"0755\"}\n", "", 1), []string{`files: missing`}},
		{"unknown slim rule", minimal + "slim:\n  rules: {strip_symbols: true}\n", []string{`fwrelease.yaml:8: slim.rules.strip_symbols: not a slimming rule; the rules are bytecode, installer_metadata`}},
		{"bad size", minimal + "slim: {max_size: lots}\n", []string{`fwrelease.yaml:7: slim.max_size: "lots" is not a size such as 150MiB`}},
		{"deps requirements and dir", minimal + "deps: {requirements: r.txt, dir: sp}\n", []string{`deps: give one of deps.requirements, deps.lock or deps.dir`}},
		{"deps requirements and lock", minimal + "deps: {requirements: r.txt, lock: uv.lock}\n", []string{`deps: give one of deps.requirements, deps.lock or deps.dir`}},
		{"deps lock and accel requirements", minimal + "deps: {lock: uv.lock, accel: {cu128: {requirements: cu.txt}}}\n", []string{`deps.accel.cu128.requirements: the lock decides every package`}},
		{"extra file without source", minimal + "extra_files: [{sha256: " + hex64 + "}]\n", []string{`fwrelease.yaml:7: extra_files[0]: give either url or path`}},
		{"extra file with both", minimal + "extra_files: [{url: https://x/uv, path: uv, sha256: " + hex64 + "}]\n", []string{`extra_files[0]: give either url or path`}},
		{"extra file without digest", minimal + "extra_files: [{url: https://x/uv}]\n", []string{`extra_files[0].sha256: missing`}},
		{"extra file bad digest", minimal + "extra_files: [{url: https://x/uv, sha256: abc}]\n", []string{`fwrelease.yaml:7: extra_files[0].sha256: "abc" is not a sha256`}},
		{"extra file digest for an arch only", minimal + "extra_files: [{url: https://x/uv, sha256: {aarch64: " + hex64 + ", arm64: " + hex64 + "}}]\n", []string{`extra_files[0].sha256.arm64: architecture "arm64" is not one of`, `extra_files[0].sha256: no sha256 for arch x86_64`}},
		{"extra file ftp", minimal + "extra_files: [{url: ftp://x/uv, sha256: " + hex64 + "}]\n", []string{`extra_files[0].url: "ftp://x/uv" is not an https:// URL`}},
		{"extra file dst escapes", minimal + "extra_files: [{url: https://x/uv, dst: ../uv, sha256: " + hex64 + "}]\n", []string{`extra_files[0].dst: "../uv" must be a relative file path`}},
		{"extra file sha256 list", minimal + "extra_files: [{url: https://x/uv, sha256: [a]}]\n", []string{`fwrelease.yaml:7: extra_files[0].sha256: want a sha256 or a map`}},
		{"shared_libs bad base", minimal + "shared_libs: {base: alpine}\n", []string{`fwrelease.yaml:7: shared_libs.base: "alpine" is not one of python-slim, pytorch-runtime, none`}},
		{"shared_libs bad missing", minimal + "shared_libs: {missing: ignore}\n", []string{`fwrelease.yaml:7: shared_libs.missing: "ignore" is not one of warn, fail`}},
		{"layer without name", minimal + "layers:\n  - {paths: [site-packages/**]}\n  - {name: worker}\n", []string{`fwrelease.yaml:8: layers[0]: name: missing`}},
		{"layer named twice", minimal + "layers:\n  - {name: a, paths: [x/**]}\n  - {name: a}\n", []string{`fwrelease.yaml:9: layers[1].name: "a" names two layers`}},
		{"middle layer without paths", minimal + "layers:\n  - {name: deps}\n  - {name: worker}\n", []string{`fwrelease.yaml:8: layers[0]: paths: missing`}},
		{"last layer with paths", minimal + "layers:\n  - {name: deps, paths: [a]}\n  - {name: worker, paths: [b]}\n", []string{`fwrelease.yaml:9: layers[1].paths: the last layer takes every path`}},
		{"layer path escapes", minimal + "layers:\n  - {name: deps, paths: [../x]}\n  - {name: worker}\n", []string{`layers[0].paths[0]: "../x" must be a relative path pattern`}},
		{"unknown layer key", minimal + "layers:\n  - {name: deps, globs: [x]}\n", []string{`fwrelease.yaml:8: unknown key "layers[0].globs"`}},
		{"bad base accel", minimal + "images:\n  bases: {gpu: \"python:{python}-slim\"}\n", []string{`fwrelease.yaml:8: images.bases.gpu: accelerator "gpu"`}},
		{"bad base ref", minimal + "images:\n  bases: {cpu: \"Python:{python}-slim@sha256:xyz\"}\n", []string{`fwrelease.yaml:8: images.bases.cpu: "Python:{python}-slim@sha256:xyz" is not an image reference`}},
		{"yaml syntax", minimal + "matrix: [\n", []string{"fwrelease.yaml:7: did not find expected node content"}},
		{"empty", "", []string{"fwrelease.yaml: the config is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "fwrelease.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	bad := strings.Replace(minimal, `"1.2.0"`, `"latest"`, 1) + "layout: docker\n"
	_, err := Parse([]byte(bad), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), "version") || !strings.Contains(err.Error(), "layout") {
		t.Errorf("want both problems reported, got %v", err)
	}
}

func TestLoadResolvesPathsAndVersion(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "src", "version.py"), "\"\"\"doc\"\"\"\n__version__ = '2.0.1'\n")
	cfgText := strings.Replace(minimal, `"1.2.0"`, `{from: src/version.py}`, 1) + "deps: {requirements: requirements.txt, find_links: [wheelhouse, \"https://example.com/wheels\"]}\n"
	write(t, filepath.Join(dir, "fwrelease.yaml"), cfgText)

	c, err := Load(filepath.Join(dir, "fwrelease.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version.Literal != "2.0.1" {
		t.Errorf("version = %q, want 2.0.1 from src/version.py", c.Version.Literal)
	}
	if c.Deps.Requirements != filepath.Join(dir, "requirements.txt") || c.Deps.FindLinks[0] != filepath.Join(dir, "wheelhouse") {
		t.Errorf("paths not resolved against the config's directory: %+v", c.Deps)
	}
	if c.Deps.FindLinks[1] != "https://example.com/wheels" {
		t.Errorf("URL find_links must be left alone, got %q", c.Deps.FindLinks[1])
	}

	c, err = Load(filepath.Join(dir, "fwrelease.yaml"), "3.0.0-rc.1")
	if err != nil || c.Version.Literal != "3.0.0-rc.1" {
		t.Errorf("--version override: %v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "fwrelease.yaml"), "3"); err == nil || !strings.Contains(err.Error(), "--version") {
		t.Errorf("bad --version accepted: %v", err)
	}
	write(t, filepath.Join(dir, "src", "version.py"), "VERSION = '1'\n")
	if _, err := Load(filepath.Join(dir, "fwrelease.yaml"), ""); err == nil || !strings.Contains(err.Error(), "version.py has no line __version__") {
		t.Errorf("want an error naming version.py, got %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), ""); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("want an error naming the missing file, got %v", err)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Sizes are printed one way everywhere: the console's table, the build's
// size report.
func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0 B", 1023: "1023 B", 4648: "4.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d) = %q, want %q", int64(in), got, want)
		}
	}
}
