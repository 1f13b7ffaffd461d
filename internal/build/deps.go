package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// installer puts a target's dependencies into a directory. pip and uv are
// the two implementations; both install for the target, not for the host.
type installer interface {
	Name() string
	Command(t target.Target, dest string, d config.Deps) []string
}

var (
	_ installer = pip{}
	_ installer = uv{}
)

// chooseInstaller prefers uv when it is on PATH (as in real CI), else the
// pip of $FWRELEASE_PYTHON or python3. FWRELEASE_INSTALLER=pip|uv forces one.
func chooseInstaller() (installer, error) {
	force := os.Getenv("FWRELEASE_INSTALLER")
	if force == "uv" || force == "" {
		if path, err := exec.LookPath("uv"); err == nil {
			return uv{path: path}, nil
		} else if force == "uv" {
			return nil, fmt.Errorf("FWRELEASE_INSTALLER=uv but uv is not on PATH")
		}
	}
	if force != "" && force != "pip" && force != "uv" {
		return nil, fmt.Errorf("FWRELEASE_INSTALLER=%q is not pip or uv", force)
	}
	py := os.Getenv("FWRELEASE_PYTHON")
	if py == "" {
		py = "python3"
	}
	path, err := exec.LookPath(py)
	if err != nil {
		return nil, fmt.Errorf("no installer: neither uv nor %s is on PATH; install one, or set FWRELEASE_PYTHON to a Python with pip", py)
	}
	// Run the interpreter itself, not a wrapper such as pyenv's shim, which
	// rehashes after every pip install and fails when builds run at once.
	out, err := exec.Command(path, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", path, err)
	}
	if real := strings.TrimSpace(string(out)); real != "" {
		path = real
	}
	return pip{python: path}, nil
}

// manylinuxTags lists the platform tags a target accepts, newest first, from
// the configured glibc (deps.manylinux, "2_28") down to the oldest.
func manylinuxTags(arch, glibc string) []string {
	minor, _ := strconv.Atoi(strings.TrimPrefix(glibc, "2_"))
	var tags []string
	for m := minor; m >= 17; m-- {
		tags = append(tags, fmt.Sprintf("manylinux_2_%d_%s", m, arch))
	}
	tags = append(tags, "manylinux2014_"+arch)
	if arch == "x86_64" {
		tags = append(tags, "manylinux_2_12_"+arch, "manylinux2010_"+arch, "manylinux_2_5_"+arch, "manylinux1_"+arch)
	}
	return tags
}

func requirementFiles(t target.Target, d config.Deps) []string {
	var files []string
	if d.Requirements != "" {
		files = append(files, d.Requirements)
	}
	if a, ok := d.Accel[t.Accel]; ok && a.Requirements != "" {
		files = append(files, a.Requirements)
	}
	return files
}

func indexArgs(t target.Target, d config.Deps) []string {
	var args []string
	if d.IndexURL != "" {
		args = append(args, "--index-url", d.IndexURL)
	}
	extra := append([]string{}, d.ExtraIndexURLs...)
	extra = append(extra, d.Accel[t.Accel].ExtraIndexURLs...)
	for _, u := range extra {
		args = append(args, "--extra-index-url", u)
	}
	for _, f := range d.FindLinks {
		args = append(args, "--find-links", f)
	}
	if d.NoIndex {
		args = append(args, "--no-index")
	}
	return args
}

type pip struct{ python string }

func (pip) Name() string { return "pip" }

func (p pip) Command(t target.Target, dest string, d config.Deps) []string {
	abi := "cp" + strings.ReplaceAll(t.Python, ".", "")
	args := []string{p.python, "-m", "pip", "install",
		// Only the config decides what goes in: no pip.conf, no PIP_*
		// variables from the build machine.
		"--isolated",
		"--target", dest,
		"--python-version", t.Python,
		"--implementation", "cp",
		"--abi", abi, "--abi", "abi3", "--abi", "none",
		"--only-binary", ":all:",
		"--no-compile",
		"--no-warn-script-location",
		"--disable-pip-version-check",
		"--no-input",
	}
	for _, tag := range manylinuxTags(t.Arch, d.Manylinux) {
		args = append(args, "--platform", tag)
	}
	args = append(args, indexArgs(t, d)...)
	for _, r := range requirementFiles(t, d) {
		args = append(args, "--requirement", r)
	}
	return args
}

type uv struct{ path string }

func (uv) Name() string { return "uv" }

func (u uv) Command(t target.Target, dest string, d config.Deps) []string {
	args := []string{u.path, "pip", "install",
		"--target", dest,
		"--python-version", t.Python,
		"--python-platform", t.Arch + "-manylinux_" + d.Manylinux,
		"--only-binary", ":all:",
		"--no-progress",
	}
	args = append(args, indexArgs(t, d)...)
	for _, r := range requirementFiles(t, d) {
		args = append(args, "--requirement", r)
	}
	return args
}

// installDeps runs the installer, and on failure returns the tail of its
// output, which is where pip and uv say which requirement had no wheel.
func installDeps(ctx context.Context, inst installer, t target.Target, dest string, d config.Deps) error {
	argv := inst.Command(t, dest, d)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PIP_NO_COLOR=1", "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("installing dependencies for %s: %w", t.ID(), ctx.Err())
		}
		return fmt.Errorf("installing dependencies for %s with %s: %w\n%s", t.ID(), inst.Name(), err, tail(out.String(), 30))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
