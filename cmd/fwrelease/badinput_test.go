package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The catalogue of bad inputs: each exits non-zero with a message naming
// the file, key, target or URL, and leaves no manifest behind.
func TestBadInputs(t *testing.T) {
	skipShort(t)
	tests := []struct {
		name   string
		mutate func(t *testing.T, src string) // edits the example copy
		config func(string) string            // edits fwrelease.yaml
		line   string                         // the exact error line ($SRC: the worker's directory, py3.1X: whichever target failed first)
		also   string                         // and, below it, this
	}{
		{name: "yaml syntax", config: func(c string) string { return c + "matrix: [\n" },
			line: "fwrelease: $SRC/fwrelease.yaml:25: did not find expected node content"},
		{name: "unknown key", config: func(c string) string { return c + "colour: blue\n" },
			line: `fwrelease: $SRC/fwrelease.yaml:25: unknown key "colour"`},
		{name: "wrong type", config: func(c string) string {
			return strings.Replace(c, "source_date_epoch: 1767225600", "source_date_epoch: soon", 1)
		},
			line: "fwrelease: $SRC/fwrelease.yaml:5: source_date_epoch: cannot unmarshal !!str `soon` into int64"},
		{name: "bad version", config: func(c string) string {
			return strings.Replace(c, "version: {from: src/version.py}", `version: "1.2"`, 1)
		},
			line: `fwrelease: $SRC/fwrelease.yaml:4: version: version "1.2" is not a semantic version such as 1.2.0 (no leading v)`},
		{name: "bad python", config: func(c string) string { return strings.Replace(c, `"3.13"`, `"3.13.1"`, 1) },
			line: `fwrelease: $SRC/fwrelease.yaml:9: matrix.python[3]: python version "3.13.1" is not of the form 3.N (3.8 or later), e.g. "3.11"`},
		{name: "unsupported platform tag", config: func(c string) string {
			return strings.Replace(c, "  no_index: true", "  no_index: true\n  manylinux: \"2_5\"", 1)
		}, line: `fwrelease: $SRC/fwrelease.yaml:20: deps.manylinux: "2_5" is not a glibc version such as "2_28" (2_17 or later)`},
		{name: "glob matches nothing", config: func(c string) string { return strings.Replace(c, `"src/*.py"`, `"lib/*.py"`, 1) },
			line: `fwrelease: build: building py3.1X-cpu-linux-x86_64: staging files: files[0].src "lib/*.py": matches nothing in $SRC`},
		{name: "symlink out of the tree", mutate: func(t *testing.T, src string) {
			os.Symlink("/etc/hostname", filepath.Join(src, "src", "leak.py"))
		}, line: `fwrelease: build: building py3.1X-cpu-linux-x86_64: staging files: files[0]: $SRC/src/leak.py: symlink to "/etc/hostname" leaves the source tree $SRC`},
		{name: "special file", mutate: func(t *testing.T, src string) {
			syscall.Mkfifo(filepath.Join(src, "src", "pipe.py"), 0o644)
		}, line: "fwrelease: build: building py3.1X-cpu-linux-x86_64: staging files: files[0]: $SRC/src/pipe.py is a special file (p---------); only files, directories and symlinks can be packed"},
		{name: "missing wheel for a target", mutate: func(t *testing.T, src string) {
			os.WriteFile(filepath.Join(src, "requirements.txt"), []byte("fwdemo-greet==0.1.0\nno-such-wheel==9.9\n"), 0o644)
		}, line: "fwrelease: build: building py3.1X-cpu-linux-x86_64: installing dependencies for py3.1X-cpu-linux-x86_64 with pip: exit status 1",
			also: "No matching distribution found for no-such-wheel==9.9"},
	}
	targetRE := regexp.MustCompile(`py3\.1[0-9]-cpu`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			copyExample(t, src, 0o644, 0o755)
			if tt.mutate != nil {
				tt.mutate(t, src)
			}
			cfg := filepath.Join(src, "fwrelease.yaml")
			if tt.config != nil {
				data, _ := os.ReadFile(cfg)
				os.WriteFile(cfg, []byte(tt.config(string(data))), 0o644)
			}
			dist := filepath.Join(dir, "dist")
			r := run(t, dir, nil, "--config", cfg, "--dist", dist, "release", "--snapshot")
			if r.code != 1 {
				t.Errorf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			stderr := targetRE.ReplaceAllString(strings.ReplaceAll(r.stderr, src, "$SRC"), "py3.1X-cpu")
			var line string
			for _, l := range strings.Split(stderr, "\n") {
				if strings.HasPrefix(l, "fwrelease: ") {
					line = l
					break
				}
			}
			if line != tt.line {
				t.Errorf("error line\n  %s\nwant\n  %s", line, tt.line)
			}
			if !strings.Contains(stderr, tt.also) {
				t.Errorf("stderr lacks %q:\n%s", tt.also, stderr)
			}
			if _, err := os.Stat(filepath.Join(dist, "manifest.json")); err == nil {
				t.Error("a failed release left dist/manifest.json")
			}
		})
	}
}

// Manifests that must not be trusted, and tarballs that must not be
// extracted.
func TestBadManifestsAndTarballs(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := releaseSnapshot(t, exampleConfig(t), filepath.Join(dir, "dist"), "022", "UTC")
	good, _ := os.ReadFile(filepath.Join(s.dist, "manifest.json"))
	manifests := map[string]struct {
		data string
		want string
	}{
		"truncated":      {string(good[:len(good)/2]), "decoding manifest"},
		"schema 2":       {strings.Replace(string(good), `"schema_version": 1`, `"schema_version": 2`, 1), "schema_version 2 is not 1"},
		"plain-http URL": {strings.Replace(string(good), "file://", "http://example.com", 1), "does not match its schema"},
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			os.WriteFile(p, []byte(m.data), 0o644)
			r := run(t, dir, nil, "verify", p, "--key", filepath.Join(s.dist, "snapshot.pub"))
			if r.code != 1 || !strings.Contains(r.stderr, m.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, m.want)
			}
		})
	}

	top := &tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755}
	tarballs := map[string]*tar.Header{
		"dot-dot":     {Name: "flash-worker/../../etc/cron.d/x", Typeflag: tar.TypeReg, Mode: 0o644},
		"absolute":    {Name: "/etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644},
		"device":      {Name: "flash-worker/sda", Typeflag: tar.TypeBlock, Mode: 0o644},
		"hard link":   {Name: "flash-worker/x", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"},
		"symlink out": {Name: "flash-worker/x", Typeflag: tar.TypeSymlink, Linkname: "../../../etc"},
	}
	for name, h := range tarballs {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(top)
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x"))
			}
			tw.Close()
			zw.Close()
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".tar.gz")
			os.WriteFile(p, buf.Bytes(), 0o644)
			r := run(t, dir, nil, "inspect", p)
			if r.code != 1 || !strings.Contains(r.stderr, "unsafe tarball") || !strings.Contains(r.stderr, p) {
				t.Errorf("exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}
