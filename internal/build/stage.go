package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/config"
)

// stage copies the worker's own files (the config's `files`) into root.
// Sources must stay inside srcDir: a symlink that escapes it, or a special
// file, is refused rather than silently followed or skipped.
func stage(srcDir, root string, files []config.File) error {
	realSrc, err := filepath.EvalSymlinks(srcDir)
	if err != nil {
		return err
	}
	// Every source is resolved inside srcDir as os.Root resolves it, so
	// neither ".." nor a symlinked directory reaches files beside it.
	project, err := os.OpenRoot(srcDir)
	if err != nil {
		return err
	}
	defer project.Close()
	written := map[string]string{} // dst → src, to catch two specs writing one file
	for i, f := range files {
		matches, err := match(srcDir, f.Src)
		if _, none := errors.AsType[noMatch](err); none && f.Optional {
			continue
		}
		if err != nil {
			return fmt.Errorf("files[%d].src %q: %w", i, f.Src, err)
		}
		if len(matches) > 1 && f.Dst != "" && !strings.HasSuffix(f.Dst, "/") {
			return fmt.Errorf("files[%d]: %q matches %d files, so dst %q must end in / to name a directory", i, f.Src, len(matches), f.Dst)
		}
		for _, src := range matches {
			rel, err := contained(project, srcDir, src)
			if err != nil {
				return fmt.Errorf("files[%d].src %q: %w", i, f.Src, err)
			}
			dst := f.Dst
			switch {
			case dst == "":
				dst = rel
			case strings.HasSuffix(dst, "/"):
				dst = filepath.Join(dst, filepath.Base(src))
			}
			c := copier{realSrc: realSrc, root: root, mode: f.Mode, written: written, from: project, fromDir: srcDir}
			if err := c.copyTree(src, filepath.Join(root, filepath.FromSlash(dst))); err != nil {
				return fmt.Errorf("files[%d]: %w", i, err)
			}
		}
	}
	return nil
}

// contained returns src relative to dir, or an error naming it if it lies
// outside dir, lexically or through a symlink.
func contained(project *os.Root, dir, src string) (string, error) {
	rel, err := filepath.Rel(dir, src)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s leaves the project directory %s", rel, dir)
	}
	if _, err := project.Lstat(rel); err != nil {
		return "", fmt.Errorf("%s leaves the project directory %s: %w", rel, dir, err)
	}
	return rel, nil
}

// noMatch is a files entry that names nothing: an error unless the entry is
// optional.
type noMatch string

func (e noMatch) Error() string { return string(e) }

func match(dir, pattern string) ([]string, error) {
	full := filepath.Join(dir, filepath.FromSlash(pattern))
	if !strings.ContainsAny(pattern, "*?[") {
		if _, err := os.Lstat(full); err != nil {
			return nil, noMatch("not found in " + dir)
		}
		return []string{full}, nil
	}
	matches, err := filepath.Glob(full)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, noMatch("matches nothing in " + dir)
	}
	return matches, nil
}

type copier struct {
	realSrc string
	root    string
	mode    string
	written map[string]string
	link    bool // hard-link files where the file system allows
	// from, when set, is the directory fromDir, through which files are
	// opened so that none is read from outside it.
	from    *os.Root
	fromDir string
}

// copyTree copies src to dst, which is under c.root. Everything is written
// through an os.Root of c.root: a symlink staged earlier, harmless inside
// the project, may point outside the staging directory from where it now
// sits, and nothing may be written through it.
func (c copier) copyTree(src, dst string) error {
	// deps.dir is copied into a site-packages that does not exist yet.
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return err
	}
	to, err := os.OpenRoot(c.root)
	if err != nil {
		return err
	}
	defer to.Close()
	// Directories this walk made through the root: a file's parent is one
	// of them (the walk visits a directory first), and need not be walked
	// through the root again, component by component, for every file.
	made := map[string]bool{}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if prev, dup := c.written[out]; dup && !d.IsDir() {
			return fmt.Errorf("%s and %s both write %s", prev, p, out)
		}
		c.written[out] = p
		info, err := d.Info()
		if err != nil {
			return err
		}
		inRoot, err := filepath.Rel(c.root, out)
		if err != nil || !filepath.IsLocal(inRoot) && inRoot != "." {
			return fmt.Errorf("%s would be written outside %s", out, c.root)
		}
		switch {
		case info.IsDir():
			made[inRoot] = true
			return to.MkdirAll(inRoot, 0o755)
		case info.Mode().IsRegular():
			return c.copyFile(to, p, inRoot, info.Mode(), made)
		case info.Mode()&fs.ModeSymlink != 0:
			return c.copyLink(to, p, inRoot, made)
		}
		return fmt.Errorf("%s is a special file (%s); only files, directories and symlinks can be packed", p, info.Mode().Type())
	})
}

// mkParent makes the directory that will hold rel, inside to, unless made
// says it already did.
func mkParent(to *os.Root, rel string, made map[string]bool) error {
	if dir := filepath.Dir(rel); dir != "." && !made[dir] {
		return to.MkdirAll(dir, 0o755)
	}
	return nil
}

func (c copier) copyFile(to *os.Root, src, dst string, mode fs.FileMode, made map[string]bool) error {
	if err := mkParent(to, dst, made); err != nil {
		return err
	}
	// The parent is now a directory inside the root, so linking into it
	// by path stays inside.
	if c.link && os.Link(src, filepath.Join(c.root, dst)) == nil {
		return nil // its mode is the source's; packing keeps only the exec bit
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	if c.mode != "" {
		m, _ := strconv.ParseUint(c.mode, 8, 32) // validated with the config
		perm = fs.FileMode(m)
	}
	in, err := c.open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := to.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return to.Chmod(dst, perm) // the umask must not decide modes
}

// copyLink keeps a symlink as a symlink, provided it resolves inside the
// source tree; Collect checks again that it resolves inside the tarball.
func (c copier) copyLink(to *os.Root, src, dst string, made map[string]bool) error {
	target, err := os.Readlink(src)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("%s: dangling symlink to %q", src, target)
	}
	if rel, err := filepath.Rel(c.realSrc, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s: symlink to %q leaves the source tree %s", src, target, c.realSrc)
	}
	if filepath.IsAbs(target) {
		return fmt.Errorf("%s: symlink to absolute path %q; make it relative", src, target)
	}
	if err := mkParent(to, dst, made); err != nil {
		return err
	}
	return to.Symlink(target, dst)
}

func (c copier) open(src string) (*os.File, error) {
	if c.from == nil {
		return os.Open(src)
	}
	rel, err := filepath.Rel(c.fromDir, src)
	if err != nil {
		return nil, err
	}
	f, err := c.from.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	return f, nil
}
