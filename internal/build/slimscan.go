package build

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/atomicfile"
	"github.com/runpod-workers/fwrelease/internal/slimrule"
)

// The slimming rules that need more than one path to decide: they look at
// a distribution's metadata, or at the whole remaining tree.

var licenseNameRE = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|copyright)([-._].*)?$`)

// findDuplicateLicenses returns the licence files (paths relative to dir)
// that repeat, word for word, another licence file of the same
// distribution: one copy of each text stays, the one in the metadata
// directory first. A distribution is its .dist-info or .egg-info directory
// and the top-level packages its top_level.txt or RECORD names. A bundled
// library's own licence differs in text, so it stays.
func findDuplicateLicenses(dir string) (map[string]bool, error) {
	metas, err := filepath.Glob(filepath.Join(dir, "*.*-info"))
	if err != nil {
		return nil, err
	}
	dups := map[string]bool{}
	for _, meta := range metas {
		roots := append([]string{filepath.Base(meta)}, ownedPackages(meta)...)
		seen := map[string]bool{}
		for _, root := range roots {
			for _, rel := range licenseFiles(dir, root) {
				data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
				if err != nil {
					return nil, fmt.Errorf("reading licence %s: %w", rel, err)
				}
				text := strings.Join(strings.Fields(string(data)), " ")
				if seen[text] {
					dups[rel] = true
				}
				seen[text] = true
			}
		}
	}
	return dups, nil
}

// ownedPackages lists the top-level package directories a distribution
// installed, from top_level.txt or else RECORD, sorted.
func ownedPackages(meta string) []string {
	names := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(meta, "top_level.txt")); err == nil {
		for _, l := range strings.Fields(string(data)) {
			names[strings.Trim(l, "/")] = true
		}
	} else if data, err := os.ReadFile(filepath.Join(meta, "RECORD")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), ",")
			if top, _, ok := strings.Cut(name, "/"); ok && top != ".." && top != filepath.Base(meta) {
				names[top] = true
			}
		}
	}
	var out []string
	for n := range names {
		if !isPackageName(n) {
			continue // "../../..": the metadata names nothing inside the tree
		}
		// Lstat: a symlink may lead anywhere, and is not a package here.
		if info, err := os.Lstat(filepath.Join(filepath.Dir(meta), n)); err == nil && info.IsDir() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// isPackageName reports whether a name from top_level.txt or RECORD is one
// directory name inside the tree: never "..", a path or the tree itself
// (a symlink in a longer path could lead anywhere).
func isPackageName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\\")
}

// licenseFiles lists the licence files under dir/root, relative to dir,
// shallowest first so that the copy a distribution shows at its top stays.
func licenseFiles(dir, root string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(dir, root), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && licenseNameRE.MatchString(d.Name()) {
			out = append(out, filepath.ToSlash(must(filepath.Rel(dir, p))))
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		return di < dj || di == dj && out[i] < out[j]
	})
	return out
}

// dropDescriptions cuts the long description, the README a package index
// shows, out of each METADATA and PKG-INFO: the body after the headers and
// an old-style Description header. importlib.metadata's version, requires
// and entry points come from the headers (and other files), which stay.
func (s *slimmer) dropDescriptions() (SlimResult, error) {
	res := SlimResult{Rule: slimrule.MetadataDescriptions.Description()}
	var files []string
	for _, pattern := range []string{"*.dist-info/METADATA", "*.egg-info/PKG-INFO"} {
		m, err := filepath.Glob(filepath.Join(s.dir, pattern))
		if err != nil {
			return res, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, p := range files {
		if s.kept(filepath.ToSlash(must(filepath.Rel(s.dir, p)))) {
			continue
		}
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", p, err)
		}
		short := metadataHeaders(data)
		if len(short) >= len(bytes.TrimRight(data, "\r\n")) {
			continue // no description, only the blank line that ends the headers
		}
		// A new file, not a write through deps.dir's hard link.
		if err := atomicfile.Write(p, short, info.Mode().Perm()); err != nil {
			return res, fmt.Errorf("rewriting %s: %w", p, err)
		}
		res.Files++
		res.Bytes += int64(len(data) - len(short))
	}
	return res, nil
}

// metadataHeaders returns the header block of a core-metadata file (RFC
// 822 style) without a Description header and its continuation lines.
func metadataHeaders(data []byte) []byte {
	var out bytes.Buffer
	inDescription := false
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		text := strings.TrimRight(string(line), "\r")
		if text == "" {
			break // the body starts: the long description
		}
		if text[0] == ' ' || text[0] == '\t' {
			if !inDescription {
				out.Write(line)
				out.WriteByte('\n')
			}
			continue
		}
		inDescription = strings.HasPrefix(strings.ToLower(text), "description:")
		if !inDescription {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
