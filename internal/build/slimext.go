package build

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/slimrule"
)

// extensionRE matches a private extension module's file name (_name.so,
// _name.cpython-311-x86_64-linux-gnu.so, _name.abi3.so); group 1 is the
// module's name.
var extensionRE = regexp.MustCompile(`^(_[A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)?\.so$`)

// removeUnusedExtensions removes private extension modules (a leading
// underscore: not API) that nothing left in the tree names: numpy's _simd
// and its _*_tests modules, which only its test suite (removed by then)
// loads. A name counts wherever it appears as a word in another file: in
// Python outside comments and docstrings (an import, or a string given to
// importlib), in another extension module (C code imports by name), in
// any data or metadata file (entry points). Run after the rules that
// remove tests, so that their imports no longer count.
func (s *slimmer) removeUnusedExtensions() (SlimResult, error) {
	res := SlimResult{Rule: slimrule.UnusedExtensions.Description()}
	files, candidates := s.extensionCandidates()
	if len(candidates) == 0 {
		return res, nil
	}
	named := map[string][]string{} // module name → its files
	for _, c := range candidates {
		name := extensionRE.FindStringSubmatch(filepath.Base(c))[1]
		named[name] = append(named[name], c)
	}
	mentioned := map[string]map[string]bool{} // module name → files naming it
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", f, err)
		}
		if strings.HasSuffix(f, ".py") {
			data = pythonCode(data)
		}
		forEachWord(data, func(w []byte) {
			if _, ok := named[string(w)]; ok {
				if mentioned[string(w)] == nil {
					mentioned[string(w)] = map[string]bool{}
				}
				mentioned[string(w)][f] = true
			}
		})
	}
	for name, paths := range named {
		for _, p := range paths {
			if len(mentioned[name]) > 1 || len(mentioned[name]) == 1 && !mentioned[name][p] {
				continue
			}
			info, err := os.Lstat(p)
			if err != nil {
				return res, err
			}
			if err := os.Remove(p); err != nil {
				return res, err
			}
			res.Files++
			res.Bytes += info.Size()
		}
	}
	return res, nil
}

// forEachWord calls f with each identifier in data that starts with an
// underscore, as the names of private modules do; a hand loop, as a
// regexp over every file of the tree costs seconds.
func forEachWord(data []byte, f func([]byte)) {
	for i := 0; i < len(data); {
		if !isWordByte(data[i]) {
			i++
			continue
		}
		j := i
		for j < len(data) && isWordByte(data[j]) {
			j++
		}
		if data[i] == '_' {
			f(data[i:j])
		}
		i = j
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// extensionCandidates returns every regular file left in the tree, and
// those of them that are private extension modules inside a package that
// no keep glob protects.
func (s *slimmer) extensionCandidates() (files, candidates []string) {
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		rel := filepath.ToSlash(must(filepath.Rel(s.dir, p)))
		if insidePackage(rel) && !s.kept(rel) && extensionRE.MatchString(d.Name()) && isELF(p) {
			candidates = append(candidates, p)
		}
		return nil
	})
	sort.Strings(candidates)
	return files, candidates
}

// pythonCode blanks a Python source's comments and triple-quoted strings
// (docstrings and prose), keeping code and one-line string literals, which
// is where a module's name appears when something imports it.
func pythonCode(src []byte) []byte {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			end := stringEnd(src, i)
			if end-i >= 6 && src[i+1] == c && src[i+2] == c {
				out = append(out, ' ')
			} else {
				out = append(out, src[i:end]...)
			}
			i = end
		default:
			out = append(out, c)
			i++
		}
	}
	return out
}

// stringEnd returns the index just past the string literal starting at
// the quote src[i], triple-quoted or not; an unterminated one-line string
// ends at the line's end.
func stringEnd(src []byte, i int) int {
	q := src[i]
	triple := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	j := i + 1
	if triple {
		j = i + 3
	}
	for j < len(src) {
		switch {
		case src[j] == '\\':
			j += 2
			continue
		case triple && src[j] == q && j+2 < len(src) && src[j+1] == q && src[j+2] == q:
			return j + 3
		case !triple && src[j] == q:
			return j + 1
		case !triple && src[j] == '\n':
			return j
		}
		j++
	}
	return len(src)
}
