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
	"github.com/runpod-workers/fwrelease/internal/slimrule"
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
	keep    []string          // globs under dir that no rule may touch
	exclude []string          // distributions the base image provides (globs)
	rules   slimrule.Switches // which rules run; nil: the defaults

	duplicateLicenses map[string]bool         // found before the walk, which removes RECORD
	imports           map[string][]importStmt // per top-level package, see packageImports
}

// slimRule removes what match selects; id is its row in slimrule.Rules.
type slimRule struct {
	id    slimrule.ID
	match func(s *slimmer, rel string, d fs.DirEntry) bool
}

// slimRules run in order during one walk; the first that matches a path
// removes it. The rules that rewrite files or need the whole remaining
// tree run after the walk (see run).
var slimRules = []slimRule{
	{slimrule.Bytecode, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return d.Name() == "__pycache__"
		}
		return strings.HasSuffix(rel, ".pyc") || strings.HasSuffix(rel, ".pyo")
	}},
	{slimrule.InstallerMetadata, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && strings.HasSuffix(path.Dir(rel), ".dist-info") && installerMetadata[d.Name()]
	}},
	{slimrule.PackagingLeftovers, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return false
		}
		if dir := path.Dir(rel); strings.HasSuffix(dir, ".dist-info") || strings.HasSuffix(dir, ".egg-info") {
			return packagingLeftovers[d.Name()]
		}
		return d.Name() == "py.typed" && insidePackage(rel)
	}},
	{slimrule.Tests, func(s *slimmer, rel string, d fs.DirEntry) bool {
		return d.IsDir() && testDirs[d.Name()] && insidePackage(rel) && !s.imported(rel)
	}},
	{slimrule.BuildScripts, func(s *slimmer, rel string, d fs.DirEntry) bool {
		switch d.Name() {
		case "setup.py", "conftest.py":
			return !d.IsDir() && insidePackage(rel) && !s.imported(strings.TrimSuffix(rel, ".py"))
		}
		return false
	}},
	{slimrule.Docs, func(s *slimmer, rel string, d fs.DirEntry) bool {
		switch d.Name() {
		case "docs", "doc", "examples", "example", "_examples":
			return d.IsDir() && insidePackage(rel) && !s.imported(rel)
		}
		return false
	}},
	{slimrule.Sources, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return false
		}
		switch path.Ext(rel) {
		case ".h", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".pyx", ".pxd", ".pxi", ".a", ".lib":
			return true
		case ".i", ".swg", ".pc": // SWIG interfaces, pkg-config files: for building against the package
			return insidePackage(rel)
		}
		return path.Base(path.Dir(rel)) == "npy-pkg-config" // numpy's pkg-config files
	}},
	{slimrule.Stubs, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && strings.HasSuffix(rel, ".pyi")
	}},
	{slimrule.TranslationSources, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && insidePackage(rel) && (path.Ext(rel) == ".po" || path.Ext(rel) == ".pot")
	}},
	{slimrule.Translations, func(_ *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && insidePackage(rel) && path.Ext(rel) == ".mo" && !englishCatalogue(rel)
	}},
	{slimrule.DuplicateLicenses, func(s *slimmer, rel string, d fs.DirEntry) bool {
		return !d.IsDir() && s.duplicateLicenses[rel]
	}},
}

var testDirs = map[string]bool{"tests": true, "test": true, "_tests": true}

// installerMetadata is what no installer reads back. RECORD stays: pip and
// uv uninstall by it, so without it a run-time upgrade of a shipped package
// fails ("Cannot uninstall …, RECORD file not found").
var installerMetadata = map[string]bool{"INSTALLER": true, "REQUESTED": true, "direct_url.json": true}

// packagingLeftovers are metadata files nothing reads at run time:
// importlib.metadata reads METADATA/PKG-INFO, entry_points.txt,
// requires.txt and top_level.txt, which stay. SOURCES.txt and
// installed-files.txt are egg-info's RECORD (a file list for uninstalling);
// WHEEL is for installers; the rest are setuptools flags.
var packagingLeftovers = map[string]bool{
	"WHEEL": true, "SOURCES.txt": true, "installed-files.txt": true,
	"dependency_links.txt": true, "not-zip-safe": true, "zip-safe": true,
}

// englishCatalogue is true for a message catalogue gettext loads for
// English (.../en/LC_MESSAGES/x.mo, en_US, en-GB…): what a worker runs in,
// and what Django loads unconditionally for its default LANGUAGE_CODE.
// A catalogue outside an LC_MESSAGES directory is not gettext's: kept.
func englishCatalogue(rel string) bool {
	dir := path.Dir(rel)
	if path.Base(dir) != "LC_MESSAGES" {
		return true
	}
	lang := strings.ToLower(path.Base(path.Dir(dir)))
	return lang == "en" || strings.HasPrefix(lang, "en_") || strings.HasPrefix(lang, "en-") || lang == "c"
}

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
	if s.rules.On(slimrule.DuplicateLicenses) {
		dups, err := findDuplicateLicenses(s.dir)
		if err != nil {
			return nil, err
		}
		s.duplicateLicenses = dups
	}
	walked, err := s.walk()
	if err != nil {
		return nil, err
	}
	results = append(results, walked...)
	if s.rules.On(slimrule.MetadataDescriptions) {
		r, err := s.dropDescriptions()
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	if s.rules.On(slimrule.UnusedExtensions) {
		r, err := s.removeUnusedExtensions()
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	strip, err := s.strip(ctx)
	if err != nil {
		return nil, err
	}
	return append(results, strip...), nil
}

// walk applies the enabled slimRules, reporting each, in the table's order.
func (s *slimmer) walk() ([]SlimResult, error) {
	var rules []slimRule
	for _, r := range slimRules {
		if s.rules.On(r.id) {
			rules = append(rules, r)
		}
	}
	counts := make([]SlimResult, len(rules))
	for i, r := range rules {
		counts[i].Rule = r.id.Description()
	}
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == s.dir {
			return err
		}
		rel := filepath.ToSlash(must(filepath.Rel(s.dir, p)))
		if s.kept(rel) {
			return nil
		}
		for i, r := range rules {
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
	return counts, err
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
// outside the directory and outside test suites, imports it: then it is
// API, not a test suite.
func (s *slimmer) imported(rel string) bool {
	top, _, _ := strings.Cut(rel, "/")
	dotted := strings.ReplaceAll(rel, "/", ".")
	name := path.Base(rel)
	parentDotted := strings.ReplaceAll(path.Dir(rel), "/", ".")
	for _, imp := range s.packageImports(top) {
		if imp.file == rel || strings.HasPrefix(imp.file, rel+"/") {
			continue
		}
		switch {
		case imp.module == dotted || strings.HasPrefix(imp.module, dotted+"."):
			return true
		case imp.module == parentDotted && containsWord(imp.names, name):
			return true
		case strings.HasPrefix(imp.module, ".") && (strings.TrimLeft(imp.module, ".") == name || containsWord(imp.names, name)) &&
			path.Dir(imp.file) == path.Dir(rel):
			return true
		}
	}
	return false
}

// importStmt is one import statement of a module: `from module import
// names` or `import module`; file is the module's path under the tree.
type importStmt struct{ file, module, names string }

// packageImports parses the import statements of a top-level package's
// modules outside test suites once, on first use: every test directory
// and setup script asks about the same package.
func (s *slimmer) packageImports(top string) []importStmt {
	if imps, ok := s.imports[top]; ok {
		return imps
	}
	var imps []importStmt
	filepath.WalkDir(filepath.Join(s.dir, top), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipAll
		}
		if d.IsDir() && testDirs[d.Name()] {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".py") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		file := filepath.ToSlash(must(filepath.Rel(s.dir, p)))
		for _, m := range importRE.FindAllSubmatch(data, -1) {
			imps = append(imps, importStmt{file: file, module: string(m[1]) + string(m[3]), names: string(m[2])})
		}
		return nil
	})
	if s.imports == nil {
		s.imports = map[string][]importStmt{}
	}
	s.imports[top] = imps
	return imps
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

// strip removes debug sections (strip --strip-debug) and then symbol
// tables (strip --strip-unneeded) from ELF shared objects, one report line
// each. The dynamic symbol table (.dynsym), which the loader and Python's
// PyInit_* lookup use, is kept by both. Without binutils' strip it says so
// rather than pretend.
func (s *slimmer) strip(ctx context.Context) ([]SlimResult, error) {
	debug := SlimResult{Rule: slimrule.DebugSections.Description()}
	symbols := SlimResult{Rule: slimrule.SymbolTables.Description()}
	var passes []stripPass
	if s.rules.On(slimrule.DebugSections) {
		passes = append(passes, stripPass{"--strip-debug", hasDebugSections, &debug})
	}
	if s.rules.On(slimrule.SymbolTables) {
		passes = append(passes, stripPass{"--strip-unneeded", hasSymbolTable, &symbols})
	}
	if err := s.stripObjects(ctx, passes); err != nil {
		return nil, err
	}
	var out []SlimResult
	for _, p := range passes {
		out = append(out, *p.res)
	}
	return out, nil
}

// stripPass runs strip with flag on the objects that need it.
type stripPass struct {
	flag string
	need func(*elf.File) bool
	res  *SlimResult
}

func (s *slimmer) stripObjects(ctx context.Context, passes []stripPass) error {
	if len(passes) == 0 {
		return nil
	}
	objects := s.sharedObjects()
	if len(objects) == 0 {
		return nil
	}
	stripBin, err := exec.LookPath("strip")
	if err != nil {
		for _, p := range passes {
			p.res.Note = fmt.Sprintf("strip (binutils) not found: %d shared objects keep what %s removes", len(objects), p.flag)
		}
		return nil
	}
	for _, obj := range objects {
		for _, pass := range passes {
			if err := stripOne(ctx, stripBin, obj, pass); err != nil {
				return err
			}
		}
	}
	return nil
}

// sharedObjects lists the ELF shared objects (*.so, *.so.N) no keep glob
// protects.
func (s *slimmer) sharedObjects() []string {
	var objects []string
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && isSharedObjectName(d.Name()) && isELF(p) {
			if rel := filepath.ToSlash(must(filepath.Rel(s.dir, p))); !s.kept(rel) {
				objects = append(objects, p)
			}
		}
		return nil
	})
	return objects
}

func isSharedObjectName(name string) bool {
	return strings.HasSuffix(name, ".so") || strings.Contains(name, ".so.")
}

// stripOne runs one pass on one object, if the object has what the pass
// removes: most wheels' objects are already stripped, and running strip
// anyway costs a copy and a process per object.
func stripOne(ctx context.Context, stripBin, p string, pass stripPass) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("reading ELF %s: %w", p, err)
	}
	need := pass.need(f)
	f.Close()
	if !need {
		return nil
	}
	before, err := os.Stat(p)
	if err != nil {
		return err
	}
	// strip rewrites a hard-linked file in place (through the link):
	// give it a private copy first.
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(p, data, before.Mode().Perm()); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, stripBin, pass.flag, p).CombinedOutput(); err != nil {
		return fmt.Errorf("strip %s %s: %v: %s", pass.flag, p, err, out)
	}
	after, err := os.Stat(p)
	if err != nil {
		return err
	}
	if saved := before.Size() - after.Size(); saved > 0 {
		pass.res.Files++
		pass.res.Bytes += saved
	}
	return os.Chmod(p, before.Mode()) // strip may rewrite the file
}

func hasDebugSections(f *elf.File) bool {
	for _, sec := range f.Sections {
		if strings.HasPrefix(sec.Name, ".debug") || strings.HasPrefix(sec.Name, ".zdebug") {
			return true
		}
	}
	return false
}

func hasSymbolTable(f *elf.File) bool { return f.Section(".symtab") != nil }

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
	return rewriteRecord(record, func(name, line string) string {
		if changed[name] {
			return strings.SplitN(line, ",", 2)[0] + ",,"
		}
		return line
	})
}

// rewriteRecord passes each line of a RECORD to edit, with the file's name
// relative to site-packages as --target installs it ("bin/x" for a script
// a normal install records as "../../bin/x").
func rewriteRecord(record string, edit func(name, line string) string) error {
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
		for strings.HasPrefix(name, "../") {
			name = strings.TrimPrefix(name, "../")
		}
		out.WriteString(edit(name, line) + "\n")
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return atomicfile.Write(record, out.Bytes(), 0o644)
}
