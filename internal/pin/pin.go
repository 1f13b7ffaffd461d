// Package pin points the SDK at a release: it rewrites the default of
// FLASH_WORKER_VERSION in the SDK's constants and writes the per-target URL
// and digest table the injection generator reads (DESIGN §8).
package pin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// ConstantsFile is where the SDK keeps FLASH_WORKER_VERSION.
const ConstantsFile = "src/runpod_flash/core/resources/constants.py"

// TableFile is written beside ConstantsFile.
const TableFile = "flash_worker_release.json"

// Table is what the injection generator reads.
type Table struct {
	Version string           `json:"version"`
	Targets map[string]Entry `json:"targets"`
}

// Entry is one target's tarball.
type Entry struct {
	File   string   `json:"file"`
	URL    string   `json:"url"`
	URLs   []string `json:"urls"`
	SHA256 string   `json:"sha256"`
	Size   int64    `json:"size"`
	Format string   `json:"format"`
}

// ErrOutOfDate is returned by Check when the SDK pins another release.
var ErrOutOfDate = errors.New("the SDK is not pinned to this release")

// The assignment line, whatever its right-hand side (a literal, or
// os.environ.get("FLASH_WORKER_VERSION", "1.1.1")); the version is the last
// quoted X.Y.Z on it.
var (
	assignRE  = regexp.MustCompile(`(?m)^[ \t]*FLASH_WORKER_VERSION\b[^=\n]*=[^\n]*$`)
	versionRE = regexp.MustCompile(`(["'])[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*(["'])`)
)

// Plan computes the new constants file and table for sdkDir.
func Plan(sdkDir string, m *manifest.Manifest) (constants, table []byte, err error) {
	path := filepath.Join(sdkDir, ConstantsFile)
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the SDK's constants: %w", err)
	}
	lines := assignRE.FindAllIndex(old, -1)
	if len(lines) != 1 {
		return nil, nil, fmt.Errorf("%s: want exactly one FLASH_WORKER_VERSION assignment, found %d", path, len(lines))
	}
	line := old[lines[0][0]:lines[0][1]]
	vs := versionRE.FindAllIndex(line, -1)
	if len(vs) == 0 {
		return nil, nil, fmt.Errorf("%s: the FLASH_WORKER_VERSION line has no quoted version: %s", path, line)
	}
	last := vs[len(vs)-1]
	quote := line[last[0] : last[0]+1]
	newLine := append(append(append(append([]byte{}, line[:last[0]]...), quote...), m.Version...), quote...)
	newLine = append(newLine, line[last[1]:]...)
	constants = append(append(append([]byte{}, old[:lines[0][0]]...), newLine...), old[lines[0][1]:]...)

	t := Table{Version: m.Version, Targets: map[string]Entry{}}
	for _, a := range m.Artifacts {
		var https []string
		for _, u := range a.URLs {
			if !bytes.HasPrefix([]byte(u), []byte("file://")) {
				https = append(https, u)
			}
		}
		if len(https) == 0 {
			https = a.URLs
		}
		e := Entry{File: a.File, URLs: https, SHA256: a.SHA256, Size: a.Size, Format: a.Format}
		if len(https) > 0 {
			e.URL = https[0]
		}
		t.Targets[a.Target.ID] = e
	}
	table, err = manifest.Marshal(t)
	return constants, table, err
}

// Write applies the plan.
func Write(sdkDir string, constants, table []byte) error {
	dir := filepath.Dir(filepath.Join(sdkDir, ConstantsFile))
	if err := os.WriteFile(filepath.Join(sdkDir, ConstantsFile), constants, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, TableFile), table, 0o644)
}

// Check reports ErrOutOfDate, naming the files, when the SDK differs.
func Check(sdkDir string, constants, table []byte) error {
	var stale []string
	for path, want := range map[string][]byte{
		filepath.Join(sdkDir, ConstantsFile):                                         constants,
		filepath.Join(filepath.Dir(filepath.Join(sdkDir, ConstantsFile)), TableFile): table,
	} {
		have, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(have, want) {
			stale = append(stale, path)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		return fmt.Errorf("%w: %v differ; run fwrelease pin", ErrOutOfDate, stale)
	}
	return nil
}
