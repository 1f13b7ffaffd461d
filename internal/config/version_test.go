package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestReadVersionFile(t *testing.T) {
	tests := []struct {
		name, file, text string
		want, wantErr    string
	}{
		{"pyproject", "pyproject.toml", "[project]\nname = \"worker-flash\"\nversion = \"1.4.1\"\n\n[tool.x]\nversion = \"9.9.9\"\n", "1.4.1", ""},
		{"pyproject, other tables first", "pyproject.toml", "[tool.ruff]\nversion = \"0.1.0\"\n[project]\nversion = '2.0.0'\n", "2.0.0", ""},
		{"python", "version.py", "__version__ = \"1.2.0\"\n", "1.2.0", ""},
		{"python, annotated", "version.py", "__version__: str = '1.2.3'\n", "1.2.3", ""},
		{"pyproject without version", "pyproject.toml", "[project]\nname = \"w\"\n", "", "pyproject.toml: [project] has no version"},
		{"pyproject, dynamic", "pyproject.toml", "[project]\nname = \"w\"\ndynamic = [\"version\"]\n", "", "pyproject.toml: [project] version is dynamic"},
		{"pyproject without [project]", "pyproject.toml", "[tool.x]\nversion = \"1.0.0\"\n", "", "pyproject.toml: no [project] table"},
		{"pyproject, bad TOML", "pyproject.toml", "[project]\nversion = \n", "", "pyproject.toml: line 2"},
		{"pyproject, not semver", "pyproject.toml", "[project]\nversion = \"1.4\"\n", "", "pyproject.toml: version \"1.4\" is not a semantic version"},
		{"python without __version__", "version.py", "VERSION = '1.0.0'\n", "", "version.py has no line __version__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			write(t, path, tt.text)
			got, err := ReadVersionFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
