package build

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// Metadata is flash-worker/MANIFEST.json: what is inside one tarball.
type Metadata struct {
	Name            string    `json:"name"`
	Version         string    `json:"version"`
	Target          string    `json:"target"`
	PythonVersion   string    `json:"python_version"`
	Accel           string    `json:"accel"`
	Platform        string    `json:"platform"`
	Layout          string    `json:"layout"`
	Source          SourceRef `json:"source"`
	SourceDateEpoch int64     `json:"source_date_epoch"`
	Packages        []Package `json:"packages"`
	Files           int       `json:"files"`
	// TreeSHA256 is the sha256 of the `sha256sum` listing ("<hex>  <path>\n"
	// for every regular file, by path, MANIFEST.json excluded), so it can be
	// recomputed from an extracted tree with coreutils alone.
	TreeSHA256 string `json:"tree_sha256"`
}

type SourceRef struct {
	Repository string `json:"repository"`
	Commit     string `json:"commit"`
}

// Package is one installed distribution.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// MetadataFile is the name of the build metadata inside the tarball.
const MetadataFile = "MANIFEST.json"

// installedPackages reads Name and Version of every installed distribution:
// *.dist-info/METADATA (wheels) and *.egg-info, a directory holding
// PKG-INFO or a PKG-INFO-format file itself (setuptools and Debian's
// python3-* packages install those).
func installedPackages(sitePackages string) ([]Package, error) {
	var metas []string
	for _, pattern := range []string{"*.dist-info/METADATA", "*.egg-info"} {
		found, err := filepath.Glob(filepath.Join(sitePackages, filepath.FromSlash(pattern)))
		if err != nil {
			return nil, err
		}
		metas = append(metas, found...)
	}
	pkgs := []Package{}
	seen := map[Package]bool{}
	for _, m := range metas {
		if info, err := os.Stat(m); err == nil && info.IsDir() {
			m = filepath.Join(m, "PKG-INFO")
		}
		p, err := readMetadata(m)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", m, err)
		}
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return strings.ToLower(pkgs[i].Name) < strings.ToLower(pkgs[j].Name) })
	return pkgs, nil
}

func readMetadata(path string) (Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return Package{}, err
	}
	defer f.Close()
	var p Package
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // the headers end at the first blank line
		}
		if v, ok := strings.CutPrefix(line, "Name: "); ok {
			p.Name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			p.Version = strings.TrimSpace(v)
		}
	}
	if p.Name == "" || p.Version == "" {
		return Package{}, fmt.Errorf("no Name or Version header")
	}
	return p, sc.Err()
}

// withMetadata adds MANIFEST.json to entries, as an entry the pack fills
// once it has read (and hashed) every other file, and returns the function
// that fills it. The tree digest has a fixed length, so the entry's size is
// known before the digest is.
func withMetadata(entries []archive.Entry, meta Metadata) ([]archive.Entry, func([]archive.FileSum) ([]byte, error), error) {
	for _, e := range entries {
		if e.Kind == archive.File {
			meta.Files++
		}
	}
	meta.TreeSHA256 = strings.Repeat("0", sha256.Size*2)
	planned, err := manifest.Marshal(meta)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", MetadataFile, err)
	}
	entries = append(entries, archive.Entry{Name: MetadataFile, Kind: archive.File, Mode: 0o644, Size: int64(len(planned)), Deferred: true})
	archive.SortEntries(entries)
	fill := func(sums []archive.FileSum) ([]byte, error) {
		meta.TreeSHA256, meta.Files = treeDigest(sums)
		return manifest.Marshal(meta)
	}
	return entries, fill, nil
}

// treeDigest is TreeSHA256, from every file's sha256 in tar order, and the
// number of files it covers.
func treeDigest(sums []archive.FileSum) (string, int) {
	listing := sha256.New()
	for _, s := range sums {
		fmt.Fprintf(listing, "%s  %s\n", s.SHA256, s.Name)
	}
	return hex.EncodeToString(listing.Sum(nil)), len(sums)
}
