package build

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/target"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestStage(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "src", "a.py"), "a", 0o600)
	writeFile(t, filepath.Join(src, "src", "b.py"), "b", 0o644)
	writeFile(t, filepath.Join(src, "scripts", "boot"), "#!/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(src, "conf", "x", "y.txt"), "y", 0o644)
	root := t.TempDir()
	err := stage(src, root, []config.File{
		{Src: "src/*.py", Dst: "src/"},
		{Src: "scripts/boot", Dst: "bootstrap.sh", Mode: "0755"},
		{Src: "conf"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"src/a.py": 0o644, "src/b.py": 0o644, "bootstrap.sh": 0o755, "conf/x/y.txt": 0o644} {
		info, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s not staged: %v", name, err)
			continue
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", name, info.Mode().Perm(), mode)
		}
	}
}

// An optional entry may name nothing; present, it is staged like any other,
// and its other faults are still faults.
func TestStageOptional(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "src", "tests", "case.json"), "{}", 0o644)
	root := t.TempDir()
	err := stage(src, root, []config.File{
		{Src: "src/*.sh", Dst: "src/", Optional: true},
		{Src: "src/absent", Optional: true},
		{Src: "src/tests", Optional: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "src", "tests", "case.json")); err != nil {
		t.Errorf("the optional entry that exists was not staged: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "src")); len(entries) != 1 {
		t.Errorf("src/ holds %d entries, want only tests/", len(entries))
	}
	os.Symlink("/etc/hostname", filepath.Join(src, "leak"))
	if err := stage(src, t.TempDir(), []config.File{{Src: "leak", Optional: true}}); err == nil || !strings.Contains(err.Error(), "leaves the source tree") {
		t.Errorf("an optional escaping symlink: %v, want a refusal", err)
	}
}

func TestStageRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, src string)
		files []config.File
		want  string
	}{
		{"glob matches nothing", nil, []config.File{{Src: "src/*.py", Dst: "src/"}}, `files[0].src "src/*.py": matches nothing`},
		{"missing file", nil, []config.File{{Src: "bootstrap.sh"}}, `files[0].src "bootstrap.sh": not found`},
		{"many files to one name", func(t *testing.T, src string) {
			writeFile(t, filepath.Join(src, "a.py"), "", 0o644)
			writeFile(t, filepath.Join(src, "b.py"), "", 0o644)
		}, []config.File{{Src: "*.py", Dst: "main.py"}}, `matches 2 files, so dst "main.py" must end in /`},
		{"two specs, one file", func(t *testing.T, src string) {
			writeFile(t, filepath.Join(src, "a.py"), "", 0o644)
		}, []config.File{{Src: "a.py", Dst: "x.py"}, {Src: "a.py", Dst: "x.py"}}, "both write"},
		{"symlink out of the source tree", func(t *testing.T, src string) {
			os.Symlink("/etc/hostname", filepath.Join(src, "leak"))
		}, []config.File{{Src: "leak"}}, "leaves the source tree"},
		{"fifo", func(t *testing.T, src string) {
			syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644)
		}, []config.File{{Src: "pipe"}}, "special file"},
		{"dot-dot to a file", secretsBeside, []config.File{{Src: "../secrets/creds"}},
			`files[0].src "../secrets/creds": ../secrets/creds leaves the project directory $SRC`},
		{"dot-dot glob", secretsBeside, []config.File{{Src: "../secrets/*", Dst: "x/"}},
			`files[0].src "../secrets/*": ../secrets/creds leaves the project directory $SRC`},
		{"glob through a symlinked directory", func(t *testing.T, src string) {
			secretsBeside(t, src)
			os.Symlink("../secrets", filepath.Join(src, "linkdir"))
		}, []config.File{{Src: "linkdir/*", Dst: "x/"}},
			`files[0].src "linkdir/*": linkdir/creds leaves the project directory $SRC: statat linkdir/creds: path escapes from parent`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, src)
			}
			staged := t.TempDir()
			err := stage(src, staged, tt.files)
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), src, "$SRC"), tt.want) {
				t.Errorf("stage error = %v, want %q", err, tt.want)
			}
			filepath.WalkDir(staged, func(p string, d fs.DirEntry, err error) error {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "SECRET") {
					t.Errorf("the secret was staged as %s", p)
				}
				return nil
			})
		})
	}
}

// secretsBeside puts a secret in ../secrets/creds, beside the project.
func secretsBeside(t *testing.T, src string) {
	writeFile(t, filepath.Join(src, "..", "secrets", "creds"), "SECRET", 0o600)
}

func TestInstallerCommands(t *testing.T) {
	tg := target.Target{Python: "3.12", Accel: "cu128", OS: "linux", Arch: "aarch64"}
	d := config.Deps{
		Requirements: "/w/requirements.txt", FindLinks: []string{"/w/wheels"}, NoIndex: true, Manylinux: "2_28",
		IndexURL:       "https://pypi.example/simple",
		ExtraIndexURLs: []string{"https://extra.example/simple"},
		Accel:          map[string]config.AccelDeps{"cu128": {ExtraIndexURLs: []string{"https://download.pytorch.org/whl/cu128"}, Requirements: "/w/cu128.txt"}},
	}
	pipCmd := strings.Join(pip{python: "python3"}.Command(tg, "/out", d), " ")
	for _, want := range []string{
		"python3 -m pip install --isolated --target /out --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none --only-binary :all: --no-compile",
		"--platform manylinux_2_28_aarch64", "--platform manylinux_2_17_aarch64", "--platform manylinux2014_aarch64",
		"--index-url https://pypi.example/simple --extra-index-url https://extra.example/simple --extra-index-url https://download.pytorch.org/whl/cu128 --find-links /w/wheels --no-index",
		"--requirement /w/requirements.txt --requirement /w/cu128.txt",
	} {
		if !strings.Contains(pipCmd, want) {
			t.Errorf("pip command\n  %s\nlacks\n  %s", pipCmd, want)
		}
	}
	if strings.Contains(pipCmd, "x86_64") || strings.Contains(pipCmd, "manylinux1_") {
		t.Errorf("pip command for aarch64 names x86_64 or manylinux1 tags: %s", pipCmd)
	}
	uvCmd := strings.Join(uv{path: "uv"}.Command(tg, "/out", d), " ")
	for _, want := range []string{"uv pip install --target /out --python-version 3.12 --python-platform aarch64-manylinux_2_28 --only-binary :all:", "--no-index", "--requirement /w/cu128.txt"} {
		if !strings.Contains(uvCmd, want) {
			t.Errorf("uv command\n  %s\nlacks\n  %s", uvCmd, want)
		}
	}
}

// A requirement with no wheel for the target must fail naming the target
// and showing pip's own explanation, using the real pip.
func TestInstallMissingWheelNamesTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pip; skipped with -short")
	}
	inst, err := chooseInstaller()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "req.txt"), "no-such-package-fw==1.0\n", 0o644)
	os.MkdirAll(filepath.Join(dir, "wheels"), 0o755)
	tg := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	err = installDeps(context.Background(), inst, tg, filepath.Join(dir, "out"), config.Deps{Requirements: filepath.Join(dir, "req.txt"), FindLinks: []string{filepath.Join(dir, "wheels")}, NoIndex: true, Manylinux: "2_28"})
	if err == nil || !strings.Contains(err.Error(), "py3.11-cpu-linux-x86_64") || !strings.Contains(err.Error(), "no-such-package-fw") {
		t.Errorf("error = %v; want it to name the target and the requirement", err)
	}
}

// uv is the installer of real CI; here it runs only where uv is installed.
func TestInstallWithUV(t *testing.T) {
	path, err := exec.LookPath("uv")
	if err != nil {
		t.Skip("uv is not on PATH (it cannot be installed on this machine); the uv command line is checked by TestInstallerCommands")
	}
	wheels, _ := filepath.Abs("../../examples/flash-worker/wheelhouse")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "req.txt"), "fwdemo-greet==0.1.0\nfwdemo-speedups==0.1.0\n", 0o644)
	tg := target.Target{Python: "3.12", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	out := filepath.Join(dir, "out")
	if err := installDeps(context.Background(), uv{path: path}, tg, out, config.Deps{Requirements: filepath.Join(dir, "req.txt"), FindLinks: []string{wheels}, NoIndex: true, Manylinux: "2_28"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "fwdemo_speedups", "*cpython-312*.so")); len(m) != 1 {
		t.Errorf("uv did not install the cp312 build: %v", m)
	}
}

func TestNormaliseScripts(t *testing.T) {
	sp := t.TempDir()
	writeFile(t, filepath.Join(sp, "bin", "tool"), "#!/root/.pyenv/versions/3.11.7/bin/python3.11\nimport sys\n", 0o755)
	writeFile(t, filepath.Join(sp, "bin", "run.sh"), "#!/bin/sh\necho\n", 0o755)
	writeFile(t, filepath.Join(sp, "tool-1.0.dist-info", "RECORD"), "tool/__init__.py,sha256=abc,3\nbin/tool,sha256=def,40\n../../bin/tool,sha256=def,40\n", 0o644)
	if err := normaliseScripts(sp); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(sp, "bin", "tool")); string(got) != "#!/usr/bin/env python3\nimport sys\n" {
		t.Errorf("tool = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(sp, "bin", "run.sh")); string(got) != "#!/bin/sh\necho\n" {
		t.Errorf("a shell script was rewritten: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(sp, "tool-1.0.dist-info", "RECORD")); string(got) != "tool/__init__.py,sha256=abc,3\nbin/tool,,\n../../bin/tool,,\n" {
		t.Errorf("RECORD = %q", got)
	}
}

// Every installed distribution is listed, however it was installed.
func TestInstalledPackages(t *testing.T) {
	sp := t.TempDir()
	writeFile(t, filepath.Join(sp, "PyYAML-6.0.dist-info", "METADATA"), "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n\nName: not-a-header\n", 0o644)
	writeFile(t, filepath.Join(sp, "aiohttp-3.8.4.egg-info", "PKG-INFO"), "Metadata-Version: 2.1\nName: aiohttp\nVersion: 3.8.4\n", 0o644)
	writeFile(t, filepath.Join(sp, "python_apt-2.6.0.egg-info"), "Metadata-Version: 1.1\nName: python-apt\nVersion: 2.6.0\n", 0o644)
	writeFile(t, filepath.Join(sp, "cryptography.egg-info", "PKG-INFO"), "Name: cryptography\nVersion: 38.0.4\n", 0o644)
	writeFile(t, filepath.Join(sp, "cryptography-38.0.4.dist-info", "METADATA"), "Name: cryptography\nVersion: 38.0.4\n", 0o644)
	pkgs, err := installedPackages(sp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+"=="+p.Version)
	}
	if want := "aiohttp==3.8.4 cryptography==38.0.4 python-apt==2.6.0 PyYAML==6.0"; strings.Join(got, " ") != want {
		t.Errorf("packages %s, want %s", strings.Join(got, " "), want)
	}
	writeFile(t, filepath.Join(sp, "broken.egg-info", "PKG-INFO"), "Summary: no name\n", 0o644)
	if _, err := installedPackages(sp); err == nil || !strings.Contains(err.Error(), "broken.egg-info") {
		t.Errorf("an egg-info without a name: %v", err)
	}
}

// A symlink that stays inside the project can point outside the staging
// directory once staged elsewhere; a later entry is not written through it.
func TestStageDoesNotWriteThroughStagedSymlink(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "project")
	writeFile(t, filepath.Join(src, "etcx", "keep"), "", 0o644)
	writeFile(t, filepath.Join(src, "payload"), "PAYLOAD", 0o644)
	os.MkdirAll(filepath.Join(src, "a", "b"), 0o755)
	os.Symlink("../../etcx", filepath.Join(src, "a", "b", "link")) // project/etcx
	root := filepath.Join(tmp, "x", "stage")                       // root/../../etcx is tmp/etcx
	os.MkdirAll(root, 0o755)
	os.MkdirAll(filepath.Join(tmp, "etcx"), 0o755)
	err := stage(src, root, []config.File{{Src: "a/b/link", Dst: "link"}, {Src: "payload", Dst: "link/evil"}})
	if err == nil || !strings.Contains(err.Error(), "path escapes from parent") {
		t.Errorf("stage error = %v, want a refusal to write through the staged link", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "etcx", "evil")); err == nil {
		t.Error("stage wrote outside the staging directory through a staged symlink")
	}
}

// debianYAMLExtension is Debian's yaml C extension module, a real ELF
// object that needs libyaml-0.so.2.
func debianYAMLExtension(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Debian's python3-yaml")
	}
	ext, _ := filepath.Glob("/usr/lib/python3/dist-packages/yaml/_yaml.cpython-*.so")
	if len(ext) == 0 {
		t.Fatal("no Debian python3-yaml C extension here (apt-get install python3-yaml; .ci/run does)")
	}
	return ext[0]
}

// Debian's yaml C extension needs libyaml-0.so.2: reported unless the tree
// or the base image's list (with shared_libs.provided) has it.
func TestMissingLibs(t *testing.T) {
	ext := debianYAMLExtension(t)
	root := t.TempDir()
	data, _ := os.ReadFile(ext)
	writeFile(t, filepath.Join(root, "site-packages", "yaml", filepath.Base(ext)), string(data), 0o644)
	writeFile(t, filepath.Join(root, "src", "handler.py"), "", 0o644)
	cpu := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	names := func(c config.SharedLibs, tg target.Target) string {
		m, err := missingLibs(root, c, tg)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range m {
			out = append(out, l.Name+"<"+strings.Join(l.NeededBy, ",")+"@"+l.BaseImage)
		}
		return strings.Join(out, " ")
	}
	want := "libyaml-0.so.2<site-packages/yaml/" + filepath.Base(ext) + "@python-slim"
	if got := names(config.SharedLibs{}, cpu); got != want {
		t.Errorf("missing %q, want %q", got, want)
	}
	if got := names(config.SharedLibs{Provided: []string{"libyaml-0.so.2"}}, cpu); got != "" {
		t.Errorf("with libyaml-0.so.2 provided, missing %q", got)
	}
	cu := cpu
	cu.Accel = "cu128"
	if got := names(config.SharedLibs{}, cu); !strings.HasSuffix(got, "@pytorch-runtime") {
		t.Errorf("a CUDA target's default base image: %q", got)
	}
	if got := names(config.SharedLibs{Base: "none"}, cpu); !strings.Contains(got, "libyaml-0.so.2") || strings.Contains(got, "libc.so.6") {
		t.Errorf("base none: %q (glibc is always there)", got)
	}
	writeFile(t, filepath.Join(root, "site-packages", "yaml.libs", "libyaml-0.so.2"), "not even ELF", 0o644)
	if got := names(config.SharedLibs{}, cpu); got != "" {
		t.Errorf("a libyaml-0.so.2 in the tree still reported: %q", got)
	}
}

// Only files something can load are read as ELF objects: by name (".so")
// or the exec bit. The same extension module, renamed, counts only when
// executable.
func TestMissingLibsReadsOnlyLoadableFiles(t *testing.T) {
	ext := debianYAMLExtension(t)
	data, _ := os.ReadFile(ext)
	cpu := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	for _, c := range []struct {
		mode    os.FileMode
		missing int
	}{{0o644, 0}, {0o755, 1}} {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "bin", "yaml-tool"), string(data), c.mode)
		m, err := missingLibs(root, config.SharedLibs{}, cpu)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != c.missing {
			t.Errorf("an ELF object without .so in its name, mode %o: missing %v, want %d libraries", c.mode, m, c.missing)
		}
	}
}

// slim.max_unpacked_size defaults to 8 × slim.max_size, else 8 GiB, and
// bounds dependencies that pip or deps.dir put in place too (measured
// after, as they write unbounded).
func TestMaxUnpackedSize(t *testing.T) {
	for _, tt := range []struct {
		slim config.Slim
		want int64
	}{
		{config.Slim{}, 8 << 30},
		{config.Slim{MaxSize: 150 << 20}, 1200 << 20},
		{config.Slim{MaxSize: 150 << 20, MaxUnpackedSize: 3 << 30}, 3 << 30},
	} {
		b := &Builder{Config: &config.Config{Slim: tt.slim}}
		if got := b.maxUnpackedSize(); got != tt.want {
			t.Errorf("%+v: %d, want %d", tt.slim, got, tt.want)
		}
	}
	deps := t.TempDir()
	writeFile(t, filepath.Join(deps, "big", "data.bin"), strings.Repeat("x", 5000), 0o644)
	root := t.TempDir()
	b := &Builder{Config: &config.Config{Deps: config.Deps{Dir: deps}, Slim: config.Slim{MaxUnpackedSize: 4096}}}
	tg := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	_, err := b.addDeps(context.Background(), tg, root, filepath.Join(root, "site-packages"))
	if err == nil || !strings.Contains(err.Error(), "the dependencies of py3.11-cpu-linux-x86_64: over slim.max_unpacked_size: 0 bytes unpacked already, 5000 more would pass its 4096 bytes") {
		t.Errorf("deps.dir over the bound: %v", err)
	}
}
