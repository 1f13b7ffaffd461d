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

// treeDigest computes TreeSHA256, the number of files it covers, and each
// file's sha256 by name.
func treeDigest(entries []archive.Entry) (string, int, map[string]string, error) {
	listing := sha256.New()
	sums := map[string]string{}
	for _, e := range entries {
		if e.Kind != archive.File || e.Name == MetadataFile {
			continue
		}
		sum, err := archive.FileSHA256(e.Source)
		if err != nil {
			return "", 0, nil, err
		}
		fmt.Fprintf(listing, "%s  %s\n", sum, e.Name)
		sums[e.Name] = sum
	}
	return hex.EncodeToString(listing.Sum(nil)), len(sums), sums, nil
}
