package layer

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"site-packages/**", "site-packages", true},
		{"site-packages/**", "site-packages/yaml/__init__.py", true},
		{"site-packages/**", "src/site-packages", false},
		{"site-packages/**", "site-packages-extra/x", false},
		{"uv", "uv", true},
		{"uv", "src/uv", false},
		{"**/*.so", "site-packages/yaml/_yaml.so", true},
		{"**/*.so", "x.so", true},
		{"src/*.py", "src/handler.py", true},
		{"src/*.py", "src/pkg/handler.py", false},
		{"venv/**/bin", "venv/bin", true},
	} {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, p := range []string{"", "/abs/**", "../x", "site-packages/../x", "[bad"} {
		if CheckPattern(p) == nil {
			t.Errorf("CheckPattern(%q) accepted it", p)
		}
	}
	if err := CheckPattern("site-packages/**"); err != nil {
		t.Error(err)
	}
}

// makeTree writes a worker tree: its own files, dependencies, and one file
// present in both (the packer must not link the worker's copy into the
// deps layer).
func makeTree(t *testing.T, dir, handler string) string {
	t.Helper()
	files := map[string]string{
		"bootstrap.sh":                              "#!/bin/sh\nexec python3 src/handler.py\n",
		".version":                                  "1.2.0\n",
		"src/handler.py":                            handler,
		"src/LICENSE":                               "same text\n",
		"site-packages/yaml/__init__.py":            "import yaml\n",
		"site-packages/yaml/LICENSE":                "same text\n",
		"site-packages/yaml/COPYING":                "same text\n",
		"site-packages/bin/tool":                    "#!/bin/sh\n",
		"site-packages/yaml-6.0.dist-info/METADATA": "Name: yaml\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o666)
		if name == "bootstrap.sh" || name == "site-packages/bin/tool" {
			mode = 0o777
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("yaml/__init__.py", filepath.Join(dir, "site-packages/link.py")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, root, out, prefix string) []Layer {
	t.Helper()
	entries, err := archive.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := Write(context.Background(), entries, Defaults("overlay"), Options{Dir: out, Prefix: prefix, Epoch: time.Unix(1767225600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return layers
}

type member struct {
	name, link string
	typ        byte
	mode       int64
}

// gunzipped opens a layer file's tar stream.
func gunzipped(t *testing.T, p string) io.Reader {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func members(t *testing.T, p string) []member {
	t.Helper()
	tr := tar.NewReader(gunzipped(t, p))
	var out []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 1767225600 {
			t.Errorf("%s: %s uid %d gid %d mtime %s", p, h.Name, h.Uid, h.Gid, h.ModTime)
		}
		out = append(out, member{h.Name, h.Linkname, h.Typeflag, h.Mode})
	}
}

func names(ms []member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

// The default split puts site-packages in deps and the rest in worker,
// each layer unpacking alone (its directories included), at the root or
// under a prefix.
func TestSplitByDefault(t *testing.T) {
	root := makeTree(t, t.TempDir(), "print('v1')\n")
	for _, c := range []struct {
		prefix       string
		deps, worker []string
	}{
		{"", []string{
			"site-packages/", "site-packages/bin/", "site-packages/bin/tool", "site-packages/link.py",
			"site-packages/yaml-6.0.dist-info/", "site-packages/yaml-6.0.dist-info/METADATA",
			"site-packages/yaml/", "site-packages/yaml/COPYING", "site-packages/yaml/LICENSE", "site-packages/yaml/__init__.py",
		}, []string{".version", "bootstrap.sh", "src/", "src/LICENSE", "src/handler.py"}},
		{"opt/flash-worker", nil, []string{
			"opt/", "opt/flash-worker/", "opt/flash-worker/.version", "opt/flash-worker/bootstrap.sh",
			"opt/flash-worker/src/", "opt/flash-worker/src/LICENSE", "opt/flash-worker/src/handler.py",
		}},
	} {
		t.Run("prefix="+c.prefix, func(t *testing.T) {
			layers := write(t, root, t.TempDir(), c.prefix)
			if len(layers) != 2 || layers[0].Name != "deps" || layers[1].Name != "worker" {
				t.Fatalf("layers %+v", layers)
			}
			deps, worker := members(t, layers[0].Path), members(t, layers[1].Path)
			if c.deps != nil && !slices.Equal(names(deps), c.deps) {
				t.Errorf("deps layer holds %q, want %q", names(deps), c.deps)
			}
			if !slices.Equal(names(worker), c.worker) {
				t.Errorf("worker layer holds %q, want %q", names(worker), c.worker)
			}
			for _, m := range append(deps, worker...) {
				switch {
				case m.typ == tar.TypeLink && m.link != c.prefix+pathSep(c.prefix)+"site-packages/yaml/COPYING":
					t.Errorf("%s links to %s: only the deps layer's own duplicate may be a link", m.name, m.link)
				case m.name == c.prefix+pathSep(c.prefix)+"bootstrap.sh" && m.mode != 0o755:
					t.Errorf("bootstrap.sh mode %o", m.mode)
				case m.typ == tar.TypeSymlink && m.link != "yaml/__init__.py":
					t.Errorf("symlink %s → %s", m.name, m.link)
				}
			}
		})
	}
}

func pathSep(prefix string) string {
	if prefix == "" {
		return ""
	}
	return "/"
}

// The same tree, written in another directory under another umask and
// time zone, gives the same layer digests; a change to the worker's files
// changes the worker layer only.
func TestLayersReproducible(t *testing.T) {
	a := write(t, makeTree(t, t.TempDir(), "print('v1')\n"), t.TempDir(), "")

	old := syscall.Umask(0o077)
	local := time.Local
	time.Local = time.FixedZone("UTC+11", 11*3600)
	b := write(t, makeTree(t, filepath.Join(t.TempDir(), "elsewhere"), "print('v1')\n"), t.TempDir(), "")
	syscall.Umask(old)
	time.Local = local
	for i := range a {
		if a[i].Digest != b[i].Digest || a[i].Size != b[i].Size || a[i].DiffID != b[i].DiffID {
			t.Errorf("layer %s: %s (%d bytes), then %s (%d bytes)", a[i].Name, a[i].Digest, a[i].Size, b[i].Digest, b[i].Size)
		}
		if id, n := diffID(t, a[i].Path); a[i].DiffID != id || a[i].TarSize != n {
			t.Errorf("layer %s: diff ID %s of %d bytes, its decompressed stream is %s of %d", a[i].Name, a[i].DiffID, a[i].TarSize, id, n)
		}
	}

	c := write(t, makeTree(t, t.TempDir(), "print('v2')\n"), t.TempDir(), "")
	if c[0].Digest != a[0].Digest {
		t.Errorf("deps layer changed with the worker's files: %s, then %s", a[0].Digest, c[0].Digest)
	}
	if c[1].Digest == a[1].Digest {
		t.Errorf("worker layer kept digest %s although handler.py changed", a[1].Digest)
	}
}

// Configured rules: the first match wins, the last layer takes the rest.
func TestSplitRules(t *testing.T) {
	root := makeTree(t, t.TempDir(), "x\n")
	entries, err := archive.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	rules := []Rule{
		{Name: "meta", Paths: []string{"**/*.dist-info/**"}},
		{Name: "deps", Paths: []string{"site-packages/**", "src/LICENSE"}},
		{Name: "rest"},
	}
	got := map[string][]string{}
	for i, part := range Split(entries, rules) {
		for _, e := range part {
			if e.Kind != archive.Dir {
				got[rules[i].Name] = append(got[rules[i].Name], e.Name)
			}
		}
	}
	want := map[string][]string{
		"meta": {"site-packages/yaml-6.0.dist-info/METADATA"},
		"deps": {"site-packages/bin/tool", "site-packages/link.py", "site-packages/yaml/COPYING", "site-packages/yaml/LICENSE", "site-packages/yaml/__init__.py", "src/LICENSE"},
		"rest": {".version", "bootstrap.sh", "src/handler.py"},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("layer %s: %q, want %q", k, got[k], v)
		}
	}
}

// The bundled layout's interpreter, venv and uv are dependencies too.
func TestDefaultsBundled(t *testing.T) {
	rules := Defaults("bundled")
	for name, want := range map[string]string{
		"python/bin/python3.11": "deps", "venv/lib/python3.11/site-packages/yaml/__init__.py": "deps",
		"uv": "deps", "src/uv": "worker", "bootstrap.sh": "worker", "MANIFEST.json": "worker",
	} {
		if got := rules[ruleFor(name, rules)].Name; got != want {
			t.Errorf("%s goes to %s, want %s", name, got, want)
		}
	}
	if got := Defaults("overlay"); ruleFor("uv", got) != 1 || ruleFor("python/x", got) != 1 {
		t.Errorf("the overlay layout's defaults take uv or python/ into deps: %+v", got)
	}
}

// diffID decompresses a layer file and hashes it.
func diffID(t *testing.T, p string) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, gunzipped(t, p))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), n
}
