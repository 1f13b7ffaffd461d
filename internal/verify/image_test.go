package verify

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// An image's tree is read back from its layers' entries (under the
// overlay's directory, hard links as their targets) and must have the
// tree_sha256 its MANIFEST.json states; a changed file, a missing one or
// an extra one does not.
func TestImageTree(t *testing.T) {
	m := &manifest.Manifest{Version: "1.2.0"}
	a := manifest.Artifact{Target: manifest.Target{ID: "py3.11-cpu-linux-x86_64", Python: "3.11", Accel: "cpu"}}
	files := map[string]string{".version": "1.2.0\n", "bootstrap.sh": "#!/bin/sh\n", "site-packages/a.py": "a\n"}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	listing := ""
	for _, n := range []string{".version", "bootstrap.sh", "site-packages/a.py", "site-packages/b.py"} {
		body := files[n]
		if n == "site-packages/b.py" {
			body = files["site-packages/a.py"]
		}
		listing += sum(body) + "  " + n + "\n"
	}
	meta := fmt.Sprintf(`{"version": "1.2.0", "target": "py3.11-cpu-linux-x86_64", "python_version": "3.11", "accel": "cpu", "tree_sha256": %q}`, sum(listing))

	read := func(prefix string, change func(map[string]string)) error {
		tr := tree{sums: map[string]string{}, prefix: prefix}
		fs := map[string]string{"MANIFEST.json": meta}
		for k, v := range files {
			fs[k] = v
		}
		if change != nil {
			change(fs)
		}
		p := func(n string) string {
			if prefix == "" {
				return n
			}
			return prefix + "/" + n
		}
		for _, d := range []string{"opt", "opt/flash-worker"} {
			if prefix != "" {
				if err := tr.add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir}, nil); err != nil {
					return err
				}
			}
		}
		for _, n := range []string{".version", "MANIFEST.json", "bootstrap.sh", "site-packages/a.py", "extra.txt"} {
			body, ok := fs[n]
			if !ok {
				continue
			}
			if err := tr.add(&tar.Header{Name: p(n), Typeflag: tar.TypeReg, Size: int64(len(body))}, strings.NewReader(body)); err != nil {
				return err
			}
		}
		if err := tr.add(&tar.Header{Name: p("site-packages/b.py"), Typeflag: tar.TypeLink, Linkname: p("site-packages/a.py")}, nil); err != nil {
			return err
		}
		return tr.check(m, a)
	}
	for _, prefix := range []string{"", "opt/flash-worker"} {
		if err := read(prefix, nil); err != nil {
			t.Errorf("prefix %q: the intact tree: %v", prefix, err)
		}
	}
	for name, change := range map[string]func(map[string]string){
		"a changed file":  func(fs map[string]string) { fs["bootstrap.sh"] = "#!/bin/sh\nevil\n" },
		"a missing file":  func(fs map[string]string) { delete(fs, "bootstrap.sh") },
		"an extra file":   func(fs map[string]string) { fs["extra.txt"] = "x" },
		"another version": func(fs map[string]string) { fs[".version"] = "1.2.1\n" },
	} {
		if err := read("opt/flash-worker", change); err == nil {
			t.Errorf("%s: the tree was accepted", name)
		}
	}
	tr := tree{sums: map[string]string{}, prefix: "opt/flash-worker"}
	if err := tr.add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg}, strings.NewReader("")); err == nil {
		t.Error("an entry outside opt/flash-worker was accepted")
	}
}
