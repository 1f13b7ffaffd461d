package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/mholt/archives"

	"github.com/runpod-workers/fwrelease/internal/atomicfile"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// The bundled layout carries its own interpreter: flash-worker/python (a
// relocatable python-build-standalone tree) and flash-worker/venv, whose
// bin/python is a relative link to it and whose site-packages holds the
// dependencies. pyvenv.cfg has no `home`: CPython 3.10–3.13 then find the
// base interpreter by following venv/bin/python's link, so the tree runs
// wherever it is unpacked, read-only included, with nothing rewritten.

// venvSitePackages is where the bundled layout installs dependencies.
func venvSitePackages(py string) string {
	return filepath.Join("venv", "lib", "python"+py, "site-packages")
}

// addInterpreter unpacks the interpreter for t into root/python and makes
// root/venv around it.
func (b *Builder) addInterpreter(ctx context.Context, t target.Target, root string) error {
	dst := filepath.Join(root, "python")
	archive := b.Config.Bundled.Archive
	switch {
	case archive != "":
		p := strings.NewReplacer("{python}", t.Python, "{arch}", t.Arch).Replace(archive)
		if err := unpackInterpreter(ctx, p, dst); err != nil {
			return fmt.Errorf("bundled.archive %s: %w", p, err)
		}
	default:
		if err := uvPython(ctx, t, dst); err != nil {
			return err
		}
	}
	exe := filepath.Join(dst, "bin", "python"+t.Python)
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("the interpreter has no bin/python%s: is it CPython %s?", t.Python, t.Python)
	}
	venvBin := filepath.Join(root, "venv", "bin")
	if err := os.MkdirAll(venvBin, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"python", "python3", "python" + t.Python} {
		if err := os.Symlink(path.Join("..", "..", "python", "bin", "python"+t.Python), filepath.Join(venvBin, name)); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf("include-system-site-packages = false\nversion = %s\n", t.Python)
	return os.WriteFile(filepath.Join(root, "venv", "pyvenv.cfg"), []byte(cfg), 0o644)
}

// unpackInterpreter extracts a python-build-standalone "install_only"
// archive (its top directory is python/) into dst. Every entry is written
// through an os.Root of dst, so a symlink the archive made earlier cannot
// carry a later entry outside it; a name with ".." is refused outright.
func unpackInterpreter(ctx context.Context, archivePath, dst string) error {
	f, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer f.Close()
	format, stream, err := archives.Identify(ctx, archivePath, f)
	if err != nil {
		return fmt.Errorf("identifying the archive: %w", err)
	}
	ex, ok := format.(archives.Extractor)
	if !ok {
		return fmt.Errorf("%s is not an archive that can be extracted", format.Extension())
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	return ex.Extract(ctx, stream, func(ctx context.Context, fi archives.FileInfo) error {
		name := strings.TrimPrefix(fi.NameInArchive, "./")
		rel, ok := strings.CutPrefix(strings.TrimSuffix(name, "/"), "python/")
		if name == "python" || name == "python/" || !ok && !strings.Contains("/"+name+"/", "/../") {
			return nil // the top directory itself, or not part of the install
		}
		if !ok || !filepath.IsLocal(filepath.FromSlash(rel)) {
			return fmt.Errorf("entry %q leaves the archive's python/ directory", fi.NameInArchive)
		}
		return unpackEntry(root, fi, filepath.FromSlash(rel)) // archives names the entry
	})
}

func unpackEntry(root *os.Root, fi archives.FileInfo, rel string) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch {
	case fi.IsDir():
		return root.MkdirAll(rel, 0o755)
	case fi.LinkTarget != "" && fi.Mode()&os.ModeSymlink != 0:
		return root.Symlink(fi.LinkTarget, rel)
	case fi.Mode().IsRegular():
		return writeFrom(root, fi, rel)
	}
	return nil // hard links and specials: python-build-standalone has none
}

func writeFrom(root *os.Root, fi archives.FileInfo, rel string) error {
	rc, err := fi.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	perm := os.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		perm = 0o755
	}
	w, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, rc); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// uvPython takes the interpreter from `uv python install` (real CI has uv;
// this machine does not, which is why bundled.archive exists).
func uvPython(ctx context.Context, t target.Target, dst string) error {
	uvBin, err := exec.LookPath("uv")
	if err != nil {
		return errors.New("the bundled layout needs bundled.archive (a python-build-standalone install_only archive) or uv on PATH")
	}
	dir, err := os.MkdirTemp("", "fwrelease-uv-python-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, uvBin, "python", "install", "--install-dir", dir, "cpython-"+t.Python+"-linux-"+t.Arch+"-gnu")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("uv python install %s: %w\n%s", t.Python, err, tail(string(out), 20))
	}
	found, _ := filepath.Glob(filepath.Join(dir, "cpython-"+t.Python+"*"))
	if len(found) != 1 {
		return fmt.Errorf("uv python install left %v in %s", found, dir)
	}
	return os.Rename(found[0], dst)
}

// venvLauncher starts a Python console script with the python beside it in
// venv/bin, found from the script's own path: it runs wherever the tree is
// unpacked and whatever PATH holds. The second line is a string to Python
// and never reached by sh.
const venvLauncher = "#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/python \"$0\" \"$@\"\n' '''\n"

// moveScriptsToVenv moves the scripts the installer put in
// site-packages/bin (pip --target's place) to venv/bin, where a venv has
// them and where bootstrap.sh and PATH look; Python scripts get
// venvLauncher instead of their shebang. RECORD names them where they now
// are, so a run-time pip or uv uninstall removes them.
func moveScriptsToVenv(root, sitePackages string) error {
	from := filepath.Join(sitePackages, "bin")
	scripts, err := os.ReadDir(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	to := filepath.Join(root, "venv", "bin")
	moved := map[string]bool{}
	for _, s := range scripts {
		src, dst := filepath.Join(from, s.Name()), filepath.Join(to, s.Name())
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("script %s: venv/bin/%s already exists", s.Name(), s.Name())
		}
		if err := relaunch(src); err != nil {
			return fmt.Errorf("script %s: %w", s.Name(), err)
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
		moved["bin/"+s.Name()] = true
	}
	if err := os.Remove(from); err != nil {
		return err
	}
	records, _ := filepath.Glob(filepath.Join(sitePackages, "*.dist-info", "RECORD"))
	for _, rec := range records {
		if err := rewriteRecord(rec, func(name, line string) string {
			if moved[name] {
				return "../../../" + line
			}
			return line
		}); err != nil {
			return err
		}
	}
	return nil
}

// relaunch gives a Python script (its shebang names python) venvLauncher.
func relaunch(script string) error {
	fi, err := os.Lstat(script)
	if err != nil || !fi.Mode().IsRegular() {
		return err
	}
	data, err := os.ReadFile(script)
	if err != nil {
		return err
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("#!")) || !bytes.Contains(first, []byte("python")) {
		return nil
	}
	return atomicfile.Write(script, append([]byte(venvLauncher), rest...), 0o755)
}
