package build

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/atomicfile"
)

// SlimResult is what one rule removed.
type SlimResult struct {
	Rule  string `json:"rule"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	Note  string `json:"note,omitempty"`
}

// slimmer removes from a site-packages tree what a running worker never
// needs. Each rule is decided from what the files are, not from guesses: a
// `tests` package that the package itself imports stays, and so does a
// `testing` module (public API in numpy, pandas and others).
type slimmer struct {
	dir     string
	keep    []string // globs under dir that no rule may touch
	exclude []string // distributions the base image provides (globs)
}

// slimRules run in order; the first that matches a path removes it.
var slimRules = []struct {
	name  string
	match func(s *slimmer, rel string, d fs.DirEntry) bool
}{
	{"bytecode caches", func(_ *slimmer, rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return d.Name() == "__pycache__"
		}
		return strings.HasSuffix(rel, ".pyc") || strings.HasSuffix(rel, ".pyo")
	}},
	{"installer metadata", func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && strings.HasSuffix(path.Dir(rel), ".dist-info") && installerMetadata[d.Name()]
	}},
	{"tests inside packages", func(s *slimmer, rel string, d fs.DirEntry) bool {
		return d.IsDir() && (d.Name() == "tests" || d.Name() == "test") && insidePackage(rel) && !s.imported(rel)
	}},
	{"docs and examples", func(s *slimmer, rel string, d fs.DirEntry) bool {
		switch d.Name() {
		case "docs", "doc", "examples", "example":
			return d.IsDir() && insidePackage(rel) && !s.imported(rel)
		}
		return false
	}},
	{"C sources, headers and static libraries", func(_ *slimmer, rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return false
		}
		switch path.Ext(rel) {
		case ".h", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".pyx", ".pxd", ".pxi", ".a", ".lib":
			return true
		}
		return false
	}},
	{"type stubs", func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && strings.HasSuffix(rel, ".pyi")
	}},
}

var installerMetadata = map[string]bool{"INSTALLER": true, "REQUESTED": true, "direct_url.json": true, "RECORD": true}

// insidePackage is true for a path below a top-level package, so a
// top-level distribution that happens to be called `tests` is left alone.
func insidePackage(rel string) bool { return strings.Contains(rel, "/") }

// run applies everything and reports per rule, in a stable order.
func (s *slimmer) run(ctx context.Context) ([]SlimResult, error) {
	var results []SlimResult
	if len(s.exclude) > 0 {
		r, err := s.excludePackages()
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	counts := make([]SlimResult, len(slimRules))
	for i, r := range slimRules {
		counts[i].Rule = r.name
	}
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == s.dir {
			return err
		}
		rel := filepath.ToSlash(must(filepath.Rel(s.dir, p)))
		if s.kept(rel) {
			return nil
		}
		for i, r := range slimRules {
			if !r.match(s, rel, d) {
				continue
			}
			n, size, err := treeSize(p)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			counts[i].Files += n
			counts[i].Bytes += size
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	results = append(results, counts...)
	strip, err := s.stripDebug(ctx)
	if err != nil {
		return nil, err
	}
	return append(results, strip), nil
}

// kept reports whether rel, or a directory above it, matches slim.keep.
func (s *slimmer) kept(rel string) bool {
	for p := rel; p != "." && p != ""; p = path.Dir(p) {
		for _, k := range s.keep {
			if ok, _ := path.Match(k, p); ok {
				return true
			}
		}
	}
	return false
}

var importRE = regexp.MustCompile(`(?m)^\s*(?:from\s+([\w.]+)\s+import\s+([\w, ]+)|import\s+([\w.]+))`)

// imported reports whether any module of the same top-level package,
// outside the directory, imports it: then it is API, not a test suite.
func (s *slimmer) imported(rel string) bool {
	top, _, _ := strings.Cut(rel, "/")
	dotted := strings.ReplaceAll(rel, "/", ".")
	name := path.Base(rel)
	parentDotted := strings.ReplaceAll(path.Dir(rel), "/", ".")
	found := false
	filepath.WalkDir(filepath.Join(s.dir, top), func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipAll
		}
		r := filepath.ToSlash(must(filepath.Rel(s.dir, p)))
		if d.IsDir() && (r == rel || d.Name() == "tests" || d.Name() == "test") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".py") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, m := range importRE.FindAllSubmatch(data, -1) {
			mod, names := string(m[1])+string(m[3]), string(m[2])
			switch {
			case mod == dotted || strings.HasPrefix(mod, dotted+"."):
				found = true
			case mod == parentDotted && containsWord(names, name):
				found = true
			case strings.HasPrefix(mod, ".") && (strings.TrimLeft(mod, ".") == name || containsWord(names, name)) &&
				path.Dir(r) == path.Dir(rel):
				found = true
			}
		}
		return nil
	})
	return found
}

func containsWord(list, w string) bool {
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == w {
			return true
		}
	}
	return false
}

// excludePackages removes distributions the base image provides, by their
// RECORD (the list of files they installed).
func (s *slimmer) excludePackages() (SlimResult, error) {
	res := SlimResult{Rule: "packages the base image provides"}
	infos, _ := filepath.Glob(filepath.Join(s.dir, "*.dist-info"))
	for _, info := range infos {
		pkg, err := readMetadata(filepath.Join(info, "METADATA"))
		if err != nil || !matchesAny(normalizeName(pkg.Name), s.exclude) {
			continue
		}
		record, err := os.ReadFile(filepath.Join(info, "RECORD"))
		if err != nil {
			return res, fmt.Errorf("excluding %s: %w (its RECORD lists its files)", pkg.Name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(record))
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), ",")
			p := filepath.Join(s.dir, filepath.FromSlash(name))
			if !strings.HasPrefix(p, s.dir+string(filepath.Separator)) {
				continue
			}
			if info, err := os.Lstat(p); err == nil && !info.IsDir() {
				res.Files++
				res.Bytes += info.Size()
				os.Remove(p)
			}
		}
		os.RemoveAll(info)
	}
	removeEmptyDirs(s.dir)
	return res, nil
}

func normalizeName(n string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(n, "-"))
}

func matchesAny(name string, globs []string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(normalizeName(g), name); ok {
			return true
		}
	}
	return false
}

func removeEmptyDirs(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		os.Remove(d) // fails, harmlessly, unless empty
	}
}

// stripDebug removes debug sections from ELF shared objects with binutils'
// strip; without strip it says so rather than pretend.
func (s *slimmer) stripDebug(ctx context.Context) (SlimResult, error) {
	res := SlimResult{Rule: "debug sections of shared objects"}
	stripBin, err := exec.LookPath("strip")
	var objects []string
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && (strings.HasSuffix(p, ".so") || strings.Contains(d.Name(), ".so.")) && isELF(p) {
			if rel := filepath.ToSlash(must(filepath.Rel(s.dir, p))); !s.kept(rel) {
				objects = append(objects, p)
			}
		}
		return nil
	})
	if len(objects) == 0 {
		return res, nil
	}
	if err != nil {
		res.Note = fmt.Sprintf("strip (binutils) not found: %d shared objects keep their debug sections", len(objects))
		return res, nil
	}
	for _, p := range objects {
		before, err := os.Stat(p)
		if err != nil {
			return res, err
		}
		// strip rewrites a hard-linked file in place (through the link):
		// give it a private copy first.
		data, err := os.ReadFile(p)
		if err != nil {
			return res, err
		}
		if err := atomicfile.Write(p, data, before.Mode().Perm()); err != nil {
			return res, err
		}
		if out, err := exec.CommandContext(ctx, stripBin, "--strip-debug", p).CombinedOutput(); err != nil {
			return res, fmt.Errorf("strip --strip-debug %s: %v: %s", p, err, out)
		}
		after, _ := os.Stat(p)
		if saved := before.Size() - after.Size(); saved > 0 {
			res.Files++
			res.Bytes += saved
		}
		os.Chmod(p, before.Mode()) // strip may rewrite the file
	}
	return res, nil
}

func isELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func treeSize(p string) (files int, size int64, err error) {
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += info.Size()
		}
		return nil
	})
	return files, size, err
}

func must(s string, _ error) string { return s }

// normaliseScripts rewrites the shebangs pip writes into console scripts
// (the absolute path of the host's interpreter, which differs per machine)
// to `#!/usr/bin/env python3`, and blanks their hashes in RECORD to match.
// This is for reproducibility, not size, so it runs with --no-slim too.
func normaliseScripts(sitePackages string) error {
	bin := filepath.Join(sitePackages, "bin")
	scripts, err := os.ReadDir(bin)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	changed := map[string]bool{}
	for _, s := range scripts {
		if !s.Type().IsRegular() {
			continue
		}
		p := filepath.Join(bin, s.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(data, []byte("#!")) {
			continue
		}
		first, rest, _ := bytes.Cut(data, []byte("\n"))
		if !bytes.Contains(first, []byte("python")) {
			continue
		}
		out := append([]byte("#!/usr/bin/env python3\n"), rest...)
		if err := atomicfile.Write(p, out, 0o755); err != nil {
			return err
		}
		changed["bin/"+s.Name()] = true
	}
	if len(changed) == 0 {
		return nil
	}
	records, _ := filepath.Glob(filepath.Join(sitePackages, "*.dist-info", "RECORD"))
	for _, rec := range records {
		if err := blankRecordHashes(rec, changed); err != nil {
			return err
		}
	}
	return nil
}

func blankRecordHashes(record string, changed map[string]bool) error {
	data, err := os.ReadFile(record)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, _, _ := strings.Cut(line, ",")
		// RECORD paths are relative to site-packages; scripts appear as
		// "../../bin/x" for a normal install and "bin/x" with --target.
		for strings.HasPrefix(name, "../") {
			name = strings.TrimPrefix(name, "../")
		}
		if changed[name] {
			line = strings.SplitN(line, ",", 2)[0] + ",,"
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return atomicfile.Write(record, out.Bytes(), 0o644)
}
