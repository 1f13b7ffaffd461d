package build

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/target"
	"github.com/runpod-workers/fwrelease/internal/uvlock"
)

// With deps.lock, dependencies are installed exactly as uv.lock pins them:
// the packages `uv export --no-dev` selects for the target's Python and
// platform, each as the one wheel the target's tags prefer, its bytes
// checked against the lock's sha256 and unpacked here — no resolver, no uv,
// no pip.

// readFreshLock reads uv.lock and refuses it unless it matches the
// pyproject.toml beside it, as `uv export --locked` would: a stale lock
// would ship other packages than the project asks for, under its version.
func readFreshLock(path string) (*uvlock.Lock, error) {
	lock, err := uvlock.Read(path)
	if err != nil {
		return nil, err
	}
	proj, err := uvlock.ReadProject(filepath.Join(filepath.Dir(path), "pyproject.toml"))
	if err != nil {
		return nil, fmt.Errorf("checking %s against its pyproject.toml: %w", path, err)
	}
	if err := lock.CheckFresh(proj); err != nil {
		return nil, err
	}
	return lock, nil
}

// installLocked installs t's locked dependencies into dest, a directory
// under the build tree root. Every write goes through an os.Root of root,
// so a symlink staged from files cannot lead a wheel entry outside it, and
// the bytes written are bounded by budget.
func (b *Builder) installLocked(ctx context.Context, t target.Target, root, dest string, budget *unpackBudget) error {
	d := b.Config.Deps
	tags := uvlock.Tags(t.Python, manylinuxTags(t.Arch, d.Manylinux))
	selected, err := b.lock.Select(uvlock.TargetEnv(t.Python, t.Arch), tags)
	if err != nil {
		return err
	}
	cache, err := cacheDir(b.Dist)
	if err != nil {
		return err
	}
	tree, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer tree.Close()
	rel, err := filepath.Rel(root, dest)
	if err != nil {
		return err
	}
	for _, s := range selected {
		whl, err := b.fetchWheel(ctx, cache, s)
		if err != nil {
			return fmt.Errorf("package %s %s: %w", s.Name, s.Version, err)
		}
		if err := unpackWheel(whl, tree, rel, budget); err != nil {
			return fmt.Errorf("package %s %s: unpacking %s: %w", s.Name, s.Version, s.Wheel.Filename(), err)
		}
	}
	b.Log.Debug("installed from uv.lock", "target", t.ID(), "packages", len(selected), "bytes", budget.used)
	return nil
}

// unpackBudget is what the unpacked dependencies may still write
// (slim.max_unpacked_size): a small wheel that inflates to gigabytes
// fails while it is unpacked, not after.
type unpackBudget struct {
	limit, used int64
}

var errOverBudget = errors.New("over slim.max_unpacked_size")

// take reserves n bytes, or fails saying how much was written already.
func (u *unpackBudget) take(n uint64) error {
	if n > uint64(u.limit-u.used) {
		return fmt.Errorf("%w: %d bytes unpacked already, %d more would pass its %d bytes; raise slim.max_unpacked_size if the dependencies really are that large", errOverBudget, u.used, n, u.limit)
	}
	u.used += int64(n)
	return nil
}

// defaultWheelMaxSize bounds a locked wheel whose size the lock does not
// record (uv records it for every registry wheel); the largest wheels,
// CUDA builds of torch, are under 4 GiB.
const defaultWheelMaxSize = 4 << 30

// fetchWheel finds the selected wheel in find_links, else on the index
// (deps.index_url), else at the lock's own URL (unless deps.no_index), and
// returns a cached copy whose sha256 is the lock's.
func (b *Builder) fetchWheel(ctx context.Context, cache string, s uvlock.Selected) (string, error) {
	d := b.Config.Deps
	name, want := s.Wheel.Filename(), s.Wheel.SHA256()
	limit, limitName := s.Wheel.Size, "the size uv.lock records for it"
	if limit <= 0 {
		limit, limitName = defaultWheelMaxSize, "the bound for a wheel whose size uv.lock does not record"
	}
	fetch := func(src string, remote bool) (string, error) {
		return b.fetchPinned(ctx, cache, src, remote, want, limit, limitName)
	}
	var tried []string
	for _, fl := range d.FindLinks {
		if strings.Contains(fl, "://") {
			continue
		}
		p := filepath.Join(fl, name)
		if _, err := os.Stat(p); err == nil {
			return fetch(p, false)
		}
		tried = append(tried, fl)
	}
	if d.IndexURL != "" {
		u, err := b.findOnIndex(ctx, d.IndexURL, s.Name, name)
		if err != nil {
			return "", err
		}
		if u != "" {
			return fetch(u, true)
		}
		tried = append(tried, d.IndexURL)
	}
	if !d.NoIndex && s.Wheel.URL != "" {
		return fetch(s.Wheel.URL, true)
	}
	if !d.NoIndex && s.Wheel.Path != "" {
		return fetch(filepath.Join(filepath.Dir(d.Lock), s.Wheel.Path), false)
	}
	return "", fmt.Errorf("wheel %s is in none of %s", name, strings.Join(tried, ", "))
}

var hrefRE = regexp.MustCompile(`(?i)<a\s[^>]*href\s*=\s*["']([^"']+)["']`)

// findOnIndex looks the wheel up on a PEP 503 simple index page and returns
// its absolute URL, or "" when the page does not list it.
func (b *Builder) findOnIndex(ctx context.Context, index, project, filename string) (string, error) {
	page := strings.TrimSuffix(index, "/") + "/" + uvlock.Normalize(project) + "/"
	body, err := b.download(ctx, page)
	if err != nil {
		return "", err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", page, err)
	}
	base, _ := url.Parse(page)
	for _, m := range hrefRE.FindAllStringSubmatch(string(data), -1) {
		ref, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			continue
		}
		abs := base.ResolveReference(ref)
		if path.Base(abs.Path) == filename {
			abs.Fragment = "" // "#sha256=…": the lock's digest is the one checked
			return abs.String(), nil
		}
	}
	return "", nil
}

// unpackWheel installs a wheel into dest (relative to tree) as pip
// --target would: the package files at the top, .data/purelib and
// .data/platlib merged into it, .data/scripts and console_scripts entry
// points into bin/. The entries' declared sizes are taken from budget
// before anything is written (the zip reader refuses an entry that
// inflates past its declared size).
func unpackWheel(whl string, tree *os.Root, dest string, budget *unpackBudget) error {
	zr, err := zip.OpenReader(whl)
	if err != nil {
		return err
	}
	defer zr.Close()
	type entry struct {
		f    *zip.File
		name string
		mode os.FileMode
	}
	var (
		entries     []entry
		entryPoints *zip.File
		size        uint64
	)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := f.Name
		if path.IsAbs(name) || strings.Contains(name, "\\") || hasDotDotSlash(name) {
			return fmt.Errorf("entry %q leaves the wheel", f.Name)
		}
		mode := os.FileMode(0o644)
		if f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		top, rest, _ := strings.Cut(name, "/")
		switch {
		case strings.HasSuffix(top, ".data"):
			kind, sub, _ := strings.Cut(rest, "/")
			switch kind {
			case "purelib", "platlib":
				name = sub
			case "scripts":
				name, mode = "bin/"+sub, 0o755
			default:
				continue // headers and data go outside site-packages; --target drops them too
			}
		case strings.HasSuffix(top, ".dist-info") && rest == "entry_points.txt":
			entryPoints = f
		}
		entries = append(entries, entry{f, filepath.Join(dest, filepath.FromSlash(name)), mode})
		size += f.UncompressedSize64
	}
	if err := budget.take(size); err != nil {
		return err
	}
	for _, e := range entries {
		if err := writeZipEntry(tree, e.f, e.name, e.mode); err != nil {
			return err
		}
	}
	if entryPoints != nil {
		return writeConsoleScripts(tree, entryPoints, filepath.Join(dest, "bin"))
	}
	return nil
}

func hasDotDotSlash(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

func writeZipEntry(tree *os.Root, f *zip.File, out string, mode os.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeInRoot(tree, rc, out, mode)
}

// writeInRoot creates out (relative to tree) with r's bytes, replacing a
// file a previous wheel wrote there (a later wheel's copy of a shared file
// wins, as with pip). Inside tree, nothing follows a link out of it.
func writeInRoot(tree *os.Root, r io.Reader, out string, mode os.FileMode) error {
	if err := tree.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tree.Remove(out)
	w, err := tree.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return tree.Chmod(out, mode) // the umask must not decide modes
}

// writeConsoleScripts makes bin/NAME for each [console_scripts] entry, the
// launcher pip would write, with a shebang that finds python3 on PATH.
func writeConsoleScripts(tree *os.Root, f *zip.File, bin string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	section := ""
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		name, spec, ok := strings.Cut(line, "=")
		if section != "console_scripts" || !ok {
			continue
		}
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		mod, fn, _ := strings.Cut(spec, ":")
		fn, _, _ = strings.Cut(strings.TrimSpace(fn), " ") // drop "[extras]"
		mod = strings.TrimSpace(mod)
		if name == "" || strings.ContainsAny(name, "/\\") || mod == "" || fn == "" {
			continue
		}
		top, _, _ := strings.Cut(fn, ".")
		script := fmt.Sprintf("#!/usr/bin/env python3\nimport sys\nfrom %s import %s\nif __name__ == \"__main__\":\n    sys.exit(%s())\n", mod, top, fn)
		if err := writeInRoot(tree, strings.NewReader(script), filepath.Join(bin, name), 0o755); err != nil {
			return err
		}
	}
	return sc.Err()
}
