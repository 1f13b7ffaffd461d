package containertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The libraries python:3.1X-slim keeps for its interpreter (what the
// pyenv builds link against, from the same Debian release), and the
// packages it installs besides.
var slimPackages = []string{
	"ca-certificates", "netbase", "tzdata", "libssl3", "libffi8", "libsqlite3-0", "libbz2-1.0",
	"liblzma5", "zlib1g", "libncursesw6", "libreadline8", "libuuid1", "libexpat1",
}

// writeLayer writes a gzipped tarball at path (atomically) with what fill
// puts in it.
func writeLayer(path string, fill func(tw *tar.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	zw, err := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if err := fill(tw); err != nil {
		tmp.Close()
		return err
	}
	for _, c := range []io.Closer{tw, zw, tmp} {
		if err := c.Close(); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// rootfsLayer is Debian bookworm minbase from debootstrap, with the
// libraries and data python:3.1X-slim has.
func rootfsLayer(dir, path string) error {
	rootfs, err := os.MkdirTemp(dir, ".rootfs-")
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range mountsUnder(rootfs) {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
		os.RemoveAll(rootfs)
	}()
	mirror := os.Getenv("FWRELEASE_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(slimPackages, ","),
		"bookworm", rootfs, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap bookworm from %s: %v\n%s", mirror, err, tail(out))
	}
	// Like the image's own clean-up: no package lists, no downloaded .debs.
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt", "var/log"} {
		os.RemoveAll(filepath.Join(rootfs, d))
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	return writeLayer(path, func(tw *tar.Writer) error {
		return addTree(tw, rootfs, "", func(rel string, d fs.DirEntry) bool {
			switch filepath.Dir(rel) {
			case "dev", "proc", "sys", "run":
				return false
			}
			return true
		}, nil)
	})
}

func tail(out []byte) []byte {
	if len(out) > 4000 {
		return out[len(out)-4000:]
	}
	return out
}

// pythonLayer copies pyenv's interpreter of version v into /usr/local, as
// python:v-slim has it: without the test suite, IDLE, tkinter, static
// library and the pyenv machine's extra packages. The interpreter's
// RUNPATH and the scripts' shebangs point into /usr/local. Only the
// default interpreter brings the unversioned names (python3, pip3).
func pythonLayer(path, v string, def bool) error {
	src, err := pyenvPrefix(v)
	if err != nil {
		return err
	}
	binary, err := patchedInterpreter(src, v)
	if err != nil {
		return err
	}
	keep := func(rel string, d fs.DirEntry) bool { return keepPython(rel, d, v, def) }
	edit := func(rel, file string) ([]byte, error) {
		if rel == "bin/python"+v {
			return binary, nil
		}
		if filepath.Dir(rel) != "bin" || !isRegular(file) {
			return nil, nil
		}
		data, err := os.ReadFile(file)
		if err != nil || !bytes.HasPrefix(data, []byte("#!"+src+"/")) {
			return nil, err
		}
		return append([]byte("#!/usr/local/"), data[len("#!"+src+"/"):]...), nil
	}
	return writeLayer(path, func(tw *tar.Writer) error {
		if err := writeDir(tw, "usr/"); err != nil {
			return err
		}
		return addTree(tw, src, "usr/local/", keep, edit)
	})
}

// isRegular says whether file is a regular file (scripts are; links are not).
func isRegular(file string) bool {
	fi, err := os.Lstat(file)
	return err == nil && fi.Mode().IsRegular()
}

func pyenvPrefix(v string) (string, error) {
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	matches, _ := filepath.Glob(filepath.Join(root, "versions", v+".*", "bin", "python"+v))
	if len(matches) == 0 {
		return "", fmt.Errorf("no Python %s under %s/versions: the test images copy pyenv's interpreters (pyenv install %s)", v, root, v)
	}
	return filepath.Dir(filepath.Dir(matches[len(matches)-1])), nil
}

// patchedInterpreter is bin/pythonV with its RUNPATH set to /usr/local/lib,
// where the layer puts libpython.
func patchedInterpreter(src, v string) ([]byte, error) {
	tmp, err := os.CreateTemp("", "python-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	data, err := os.ReadFile(filepath.Join(src, "bin", "python"+v))
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Write(data); err != nil {
		return nil, err
	}
	tmp.Close()
	if out, err := exec.Command("patchelf", "--set-rpath", "/usr/local/lib", tmp.Name()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("patchelf --set-rpath on python%s: %v: %s", v, err, out)
	}
	return os.ReadFile(tmp.Name())
}

// keepPython says which files of pyenv's prefix the image gets.
func keepPython(rel string, d fs.DirEntry, v string, def bool) bool {
	parts := strings.Split(rel, "/")
	switch {
	case rel == ".":
		return true
	case parts[0] == "bin":
		return len(parts) == 1 || def || strings.Contains(parts[1], v)
	case parts[0] == "include":
		return len(parts) == 1 || parts[1] == "python"+v
	case parts[0] != "lib":
		return false
	case len(parts) == 1:
		return true
	case parts[1] == "libpython3.so":
		return def
	case strings.HasPrefix(parts[1], "libpython"+v):
		return true
	case parts[1] != "python"+v:
		return false
	case len(parts) == 2:
		return true
	}
	switch name := parts[2]; {
	case name == "test" || name == "idlelib" || name == "tkinter" || name == "turtledemo":
		return false
	case strings.HasPrefix(name, "config-"):
		return !strings.HasSuffix(rel, ".a")
	case name == "site-packages" && len(parts) > 3:
		return keepSitePackage(parts[3])
	}
	return true
}

// keepSitePackage keeps what python:3.1X-slim ships in site-packages.
func keepSitePackage(name string) bool {
	for _, p := range []string{"pip", "setuptools", "_distutils_hack", "distutils-precedence.pth", "pkg_resources", "wheel", "README.txt"} {
		if name == p || strings.HasPrefix(name, p+"-") {
			return true
		}
	}
	return false
}

// torchLayer installs a stand-in torch distribution (a package and its
// dist-info, as pip leaves them) for Python v.
func torchLayer(path, v string) error {
	site := "usr/local/lib/python" + v + "/site-packages/"
	files := map[string]string{
		"torch/__init__.py":                   "# A stand-in for torch, as a GPU base image provides it.\n__version__ = \"2.4.0\"\n",
		"torch-2.4.0.dist-info/METADATA":      "Metadata-Version: 2.1\nName: torch\nVersion: 2.4.0\nSummary: stand-in\n",
		"torch-2.4.0.dist-info/WHEEL":         "Wheel-Version: 1.0\nGenerator: containertest\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"torch-2.4.0.dist-info/top_level.txt": "torch\n",
		"torch-2.4.0.dist-info/INSTALLER":     "pip\n",
	}
	names := []string{"torch/__init__.py", "torch-2.4.0.dist-info/INSTALLER", "torch-2.4.0.dist-info/METADATA",
		"torch-2.4.0.dist-info/WHEEL", "torch-2.4.0.dist-info/top_level.txt"}
	var record strings.Builder
	for _, n := range names {
		sum := sha256.Sum256([]byte(files[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	record.WriteString("torch-2.4.0.dist-info/RECORD,,\n")
	files["torch-2.4.0.dist-info/RECORD"] = record.String()
	names = append(names, "torch-2.4.0.dist-info/RECORD")
	return writeLayer(path, func(tw *tar.Writer) error {
		for _, d := range []string{"usr/", "usr/local/", "usr/local/lib/", "usr/local/lib/python" + v + "/", site,
			site + "torch/", site + "torch-2.4.0.dist-info/"} {
			if err := writeDir(tw, d); err != nil {
				return err
			}
		}
		for _, n := range names {
			if err := writeFile(tw, site+n, 0o644, []byte(files[n])); err != nil {
				return err
			}
		}
		return nil
	})
}

// busyboxLayer is a minimal image: the static busybox and a link for each
// of its applets in /bin.
func busyboxLayer(path string) error {
	bin, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox not found: apt-get install -y busybox-static")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	list, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", bin, err)
	}
	return writeLayer(path, func(tw *tar.Writer) error {
		for _, d := range []string{"bin/", "etc/", "root/", "tmp/"} {
			if err := writeDir(tw, d); err != nil {
				return err
			}
		}
		if err := writeFile(tw, "bin/busybox", 0o755, data); err != nil {
			return err
		}
		if err := writeFile(tw, "etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")); err != nil {
			return err
		}
		if err := writeFile(tw, "etc/group", 0o644, []byte("root:x:0:\n")); err != nil {
			return err
		}
		for _, applet := range strings.Fields(string(list)) {
			if applet == "busybox" {
				continue
			}
			h := &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: created}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeDir(tw *tar.Writer, name string) error {
	mode := int64(0o755)
	if name == "tmp/" {
		mode = 0o1777
	}
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: created})
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: created}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// addTree writes src's directories, regular files, symlinks and hard
// links below prefix, in lexical order, keeping owners and modes. keep
// filters (a directory left out is not entered); edit may replace a
// regular file's content (nil keeps it).
func addTree(tw *tar.Writer, src, prefix string, keep func(string, fs.DirEntry) bool,
	edit func(rel, file string) ([]byte, error)) error {
	links := map[uint64]string{}
	return filepath.WalkDir(src, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, file)
		if !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := prefix + rel
		if rel == "." {
			if prefix == "" {
				return nil
			}
			name = prefix
		}
		return addEntry(tw, file, name, rel, links, edit)
	})
}

func addEntry(tw *tar.Writer, file, name, rel string, links map[uint64]string,
	edit func(rel, file string) ([]byte, error)) error {
	fi, err := os.Lstat(file)
	if err != nil {
		return err
	}
	var target string
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if target, err = os.Readlink(file); err != nil {
			return err
		}
	case !fi.IsDir() && !fi.Mode().IsRegular():
		return nil // devices, sockets, FIFOs: the runtime provides /dev
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return err
	}
	h.Name, h.Uname, h.Gname, h.ModTime = strings.TrimSuffix(name, "/"), "", "", created
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	st := fi.Sys().(*syscall.Stat_t)
	h.Uid, h.Gid = int(st.Uid), int(st.Gid)
	if fi.IsDir() {
		h.Name += "/"
		return tw.WriteHeader(h)
	}
	var data []byte
	if fi.Mode().IsRegular() {
		if edit != nil {
			if data, err = edit(rel, file); err != nil {
				return err
			}
		}
		if first, ok := links[st.Ino]; ok && st.Nlink > 1 && data == nil {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			return tw.WriteHeader(h)
		}
		links[st.Ino] = h.Name
	}
	if data != nil {
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(h); err != nil || !fi.Mode().IsRegular() {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
