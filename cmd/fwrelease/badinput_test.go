package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The catalogue of bad inputs: each exits non-zero with a message naming
// the file, key, target or URL, and leaves no manifest behind.
func TestBadInputs(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(t *testing.T, src string) // edits the example copy
		config func(string) string            // edits fwrelease.yaml
		line   string                         // the exact error line ($SRC: the worker's directory, $END: the line appended to the config, py3.1X: whichever target failed first)
		also   string                         // and, below it, this
	}{
		{name: "yaml syntax", config: func(c string) string { return c + "matrix: [\n" },
			line: "fwrelease: $SRC/fwrelease.yaml:$END: did not find expected node content"},
		{name: "unknown key", config: func(c string) string { return c + "colour: blue\n" },
			line: `fwrelease: $SRC/fwrelease.yaml:$END: unknown key "colour"`},
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
		{name: "files beside the project", mutate: secretsBeside, config: func(c string) string {
			return strings.Replace(c, `"src/*.py"`, `"../secrets/*"`, 1)
		}, line: `fwrelease: build: building py3.1X-cpu-linux-x86_64: staging files: files[0].src "../secrets/*": ../secrets/creds leaves the project directory $SRC`},
		{name: "glob through a symlinked directory", mutate: func(t *testing.T, src string) {
			secretsBeside(t, src)
			os.Symlink("../secrets", filepath.Join(src, "linkdir"))
		}, config: func(c string) string { return strings.Replace(c, `"src/*.py"`, `"linkdir/*"`, 1) },
			line: `fwrelease: build: building py3.1X-cpu-linux-x86_64: staging files: files[0].src "linkdir/*": linkdir/creds leaves the project directory $SRC: statat linkdir/creds: path escapes from parent`},
		{name: "bundled archive writing through its own symlink", mutate: func(t *testing.T, src string) {
			os.MkdirAll(filepath.Join(src, "..", "outside"), 0o755)
			os.WriteFile(filepath.Join(src, "python.tar.gz"), gzipTar(t, []*tar.Header{
				{Name: "python/", Typeflag: tar.TypeDir, Mode: 0o755},
				{Name: "python/escape", Typeflag: tar.TypeSymlink, Linkname: filepath.Join(src, "..", "outside")},
				{Name: "python/escape/PWNED", Typeflag: tar.TypeReg, Mode: 0o644},
			}), 0o644)
		}, config: func(c string) string {
			return strings.Replace(c, "layout: overlay", "layout: bundled\nbundled: {archive: python.tar.gz}", 1)
		}, line: "fwrelease: build: building py3.1X-cpu-linux-x86_64: adding the interpreter: bundled.archive $SRC/python.tar.gz: handling file: python/escape/PWNED: mkdirat escape: statat escape: path escapes from parent"},
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
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			copyExample(t, src, 0o644, 0o755)
			if tt.mutate != nil {
				tt.mutate(t, src)
			}
			cfg := filepath.Join(src, "fwrelease.yaml")
			want := tt.line
			if tt.config != nil {
				data, err := os.ReadFile(cfg)
				if err != nil {
					t.Fatal(err)
				}
				want = strings.ReplaceAll(want, "$END", strconv.Itoa(strings.Count(string(data), "\n")+1))
				if err := os.WriteFile(cfg, []byte(tt.config(string(data))), 0o644); err != nil {
					t.Fatal(err)
				}
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
			if line != want {
				t.Errorf("error line\n  %s\nwant\n  %s", line, want)
			}
			if !strings.Contains(stderr, tt.also) {
				t.Errorf("stderr lacks %q:\n%s", tt.also, stderr)
			}
			if _, err := os.Stat(filepath.Join(dist, "manifest.json")); err == nil {
				t.Error("a failed release left dist/manifest.json")
			}
			if _, err := os.Stat(filepath.Join(dir, "outside", "PWNED")); err == nil {
				t.Error("an archive wrote outside its directory")
			}
		})
	}
}

// secretsBeside puts a secret in ../secrets/creds, beside the project.
func secretsBeside(t *testing.T, src string) {
	os.MkdirAll(filepath.Join(src, "..", "secrets"), 0o755)
	os.WriteFile(filepath.Join(src, "..", "secrets", "creds"), []byte("SECRET"), 0o600)
}

// Manifests that must not be trusted, and tarballs that must not be
// extracted.
func TestBadManifestsAndTarballs(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	s := sharedSnapshot(t)
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
	file := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to, Mode: 0o777}
	}
	tarballs := []struct {
		name    string
		headers []*tar.Header
		line    string // after "fwrelease: inspecting $TARBALL: unsafe tarball: "
	}{
		{"dot-dot", []*tar.Header{file("flash-worker/../../etc/cron.d/x")},
			`entry "flash-worker/../../etc/cron.d/x": path has '..', '.' or an empty component`},
		{"absolute", []*tar.Header{file("/etc/passwd")}, `entry "/etc/passwd": absolute or empty path`},
		{"device", []*tar.Header{{Name: "flash-worker/sda", Typeflag: tar.TypeBlock, Mode: 0o644}},
			`entry "flash-worker/sda": type '4' is not a directory, file or link`},
		{"hard link", []*tar.Header{{Name: "flash-worker/x", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}},
			`entry "flash-worker/x": hard link to "/etc/shadow", which is not an earlier regular file`},
		{"symlink out", []*tar.Header{link("flash-worker/x", "../../../etc")},
			`entry "flash-worker/x": symlink "../../../etc" leaves the tree`},
		{"chained symlinks", []*tar.Header{link("flash-worker/d", "."), link("flash-worker/d/l", ".."), file("flash-worker/d/l/ESCAPED")},
			`entry "flash-worker/d/l": the path passes through the symlink "flash-worker/d"`},
		{"symlink out and back in", []*tar.Header{link("flash-worker/x", "../flash-worker/y"), file("flash-worker/y")},
			`entry "flash-worker/x": symlink "../flash-worker/y" leaves the tree`},
		{"GNU sparse name", []*tar.Header{{Name: "flash-worker/README", Typeflag: tar.TypeReg, Mode: 0o644,
			PAXRecords: map[string]string{"GNU.sparse.name": "flash-worker/bootstrap.sh"}}},
			`entry "flash-worker/README": PAX record "GNU.sparse.name" could make another extractor read this entry differently`},
	}
	for _, tb := range tarballs {
		t.Run(tb.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tb.name, " ", "-")+".tar.gz")
			os.WriteFile(p, gzipTar(t, append([]*tar.Header{top}, tb.headers...)), 0o644)
			r := run(t, dir, nil, "inspect", p)
			want := "fwrelease: inspecting " + p + ": unsafe tarball: " + tb.line + "\n"
			if r.code != 1 || r.stderr != want {
				t.Errorf("exit %d, stderr\n  %s\nwant 1 and\n  %s", r.code, r.stderr, want)
			}
		})
	}
}

// gzipTar writes headers (a regular file holding one byte). archive/tar
// will not write PAX records it does not know, such as GNU.sparse.name, so
// those go in as a file that is then retyped as a PAX header.
func gzipTar(t *testing.T, headers []*tar.Header) []byte {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	for _, h := range headers {
		if h.PAXRecords["GNU.sparse.name"] != "" {
			rec := fmt.Sprintf(" GNU.sparse.name=%s\n", h.PAXRecords["GNU.sparse.name"])
			rec = fmt.Sprintf("%d%s", len(rec)+2, rec)
			at := plain.Len()
			tw.WriteHeader(&tar.Header{Name: "PaxHeader", Typeflag: tar.TypeReg, Size: int64(len(rec)), Format: tar.FormatUSTAR})
			tw.Write([]byte(rec))
			tw.Flush()
			block := plain.Bytes()[at : at+512]
			block[156] = tar.TypeXHeader
			copy(block[148:156], "        ")
			sum := 0
			for _, c := range block {
				sum += int(c)
			}
			copy(block[148:156], fmt.Sprintf("%06o\x00 ", sum))
			h = &tar.Header{Name: h.Name, Typeflag: h.Typeflag, Mode: h.Mode, Format: tar.FormatUSTAR}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x")[:h.Size])
	}
	tw.Close()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain.Bytes())
	zw.Close()
	return buf.Bytes()
}
