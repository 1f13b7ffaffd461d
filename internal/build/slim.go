package build

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SlimRule removes one kind of file that a running worker never needs.
type SlimRule struct {
	Name  string
	Match func(rel string, d fs.DirEntry) bool // rel is slash-separated, under site-packages
}

// SlimResult is what one rule removed.
type SlimResult struct {
	Rule  string `json:"rule"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

var installerMetadata = map[string]bool{"INSTALLER": true, "REQUESTED": true, "direct_url.json": true, "RECORD": true}

// slimRules are the rules that are safe for every package: nothing imports
// bytecode caches or reads installer metadata at run time.
var slimRules = []SlimRule{
	{Name: "bytecode caches", Match: func(rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return d.Name() == "__pycache__"
		}
		return strings.HasSuffix(rel, ".pyc") || strings.HasSuffix(rel, ".pyo")
	}},
	{Name: "installer metadata", Match: func(rel string, d fs.DirEntry) bool {
		dir := filepath.Base(filepath.Dir(rel))
		return !d.IsDir() && strings.HasSuffix(dir, ".dist-info") && installerMetadata[d.Name()]
	}},
}

// slim applies the rules to dir and reports what each removed.
func slim(dir string, rules []SlimRule) ([]SlimResult, error) {
	results := make([]SlimResult, len(rules))
	for i, r := range rules {
		results[i].Rule = r.Name
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		for i, r := range rules {
			if !r.Match(rel, d) {
				continue
			}
			n, size, err := treeSize(p)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			results[i].Files += n
			results[i].Bytes += size
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return nil
	})
	return results, err
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
		if err := os.WriteFile(p, out, 0o755); err != nil {
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
	return os.WriteFile(record, out.Bytes(), 0o644)
}
