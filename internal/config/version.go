package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/pelletier/go-toml/v2"
)

var versionAssignRE = regexp.MustCompile(`(?m)^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']`)

// ReadVersionFile reads the release version from a file: `[project] version`
// from a pyproject.toml (where the real worker keeps it), or
// `__version__ = "X.Y.Z"` from a Python source file. Any other .toml is read
// as a pyproject.toml too.
func ReadVersionFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var v string
	if filepath.Ext(path) == ".toml" {
		v, err = pyprojectVersion(data)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	} else {
		m := versionAssignRE.FindSubmatch(data)
		if m == nil {
			return "", fmt.Errorf("%s has no line __version__ = \"X.Y.Z\"", path)
		}
		v = string(m[1])
	}
	if err := checkVersion(v); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func pyprojectVersion(data []byte) (string, error) {
	var doc struct {
		Project *struct {
			Version *string  `toml:"version"`
			Dynamic []string `toml:"dynamic"`
		} `toml:"project"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return "", fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return "", err
	}
	switch {
	case doc.Project == nil:
		return "", errors.New("no [project] table, so no version")
	case doc.Project.Version != nil:
		return *doc.Project.Version, nil
	case slices.Contains(doc.Project.Dynamic, "version"):
		return "", errors.New("[project] version is dynamic (computed at build time); give the version literally in the config, with --version, or point version.from at the file that assigns __version__")
	}
	return "", errors.New("[project] has no version")
}
