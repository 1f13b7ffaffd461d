package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzRead: whatever the bytes, Read never panics, and a tarball it calls
// safe has one top directory, no absolute or ".." paths and no special
// files, and writes nothing outside its directory, and exactly the entries
// Read listed, when GNU tar or Python's tarfile extracts it.
func FuzzRead(f *testing.F) {
	top := &tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755}
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to, Mode: 0o777}
	}
	reg := &tar.Header{Name: "flash-worker/README", Typeflag: tar.TypeReg, Mode: 0o644}
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/.version", Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/../x", Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/l", Typeflag: tar.TypeSymlink, Linkname: "../../etc"}))
	f.Add(rawTar(f, top, link("flash-worker/d", "."), link("flash-worker/d/l", ".."), &tar.Header{Name: "flash-worker/d/l/ESCAPED", Typeflag: tar.TypeReg}))
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/a/x", Typeflag: tar.TypeReg}, link("flash-worker/b", "a"), link("flash-worker/c", "b/x")))
	f.Add(rawTarWith(f, withPAX(f, map[string]string{"GNU.sparse.name": "flash-worker/bootstrap.sh"}, reg)))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, m := range c.Members {
			name := strings.TrimSuffix(m.Name, "/")
			if path.IsAbs(m.Name) || strings.Contains("/"+name+"/", "/../") || !strings.HasPrefix(name, c.Top) {
				t.Fatalf("accepted unsafe entry %q", m.Name)
			}
			switch m.Type {
			case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
			default:
				t.Fatalf("accepted entry %q of type %q", m.Name, m.Type)
			}
		}
		for _, problem := range extractWithOthers(t, data, c) {
			t.Error(problem)
		}
	})
}

// The extractor check finds the escape the chained-symlink tarball makes
// (so the fuzz property above can fail).
func TestExtractorsShowEscape(t *testing.T) {
	if pythonExtractor() == nil {
		t.Skip("python3 is not installed")
	}
	top := &tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755}
	data := rawTar(t, top,
		&tar.Header{Name: "flash-worker/d", Typeflag: tar.TypeSymlink, Linkname: ".", Mode: 0o777},
		&tar.Header{Name: "flash-worker/d/l", Typeflag: tar.TypeSymlink, Linkname: "..", Mode: 0o777},
		&tar.Header{Name: "flash-worker/d/l/ESCAPED", Typeflag: tar.TypeReg, Mode: 0o644})
	c := &Contents{Top: "flash-worker"}
	problems := strings.Join(extractWithOthers(t, data, c), "\n")
	if !strings.Contains(problems, "python tarfile wrote py/out/ESCAPED outside flash-worker/") {
		t.Errorf("the escape went unnoticed; problems:\n%s", problems)
	}
}

// extractWithOthers extracts the tarball with GNU tar (as the start
// command does, --strip-components=1) and Python's tarfile (unfiltered, as
// Python before 3.14 does by default), each into a directory two levels
// below a scratch root, and reports any path written outside it, any
// symlink that resolves outside it, and, when the extractor succeeded, any
// difference between what it made and what Read listed.
func extractWithOthers(t *testing.T, data []byte, c *Contents) []string {
	plain := decompress(t, data)
	root := t.TempDir()
	tarball := filepath.Join(root, "plain.tar")
	if err := os.WriteFile(tarball, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	var problems []string
	want := func(strip bool) []string {
		names := map[string]bool{}
		for _, m := range c.Members {
			name := strings.TrimSuffix(m.Name, "/")
			for dir := path.Dir(name); dir != c.Top && dir != "."; dir = path.Dir(dir) {
				names[dir] = true // extractors make parents no entry names
			}
			names[name] = name != c.Top
		}
		var list []string
		for name, keep := range names {
			if keep && strip {
				name = strings.TrimPrefix(name, c.Top+"/")
			}
			if keep {
				list = append(list, name)
			}
		}
		slices.Sort(list)
		return list
	}
	if bin, err := exec.LookPath("tar"); err == nil {
		out := filepath.Join(root, "gnu", "out")
		os.MkdirAll(out, 0o755)
		runErr := exec.Command(bin, "-xf", tarball, "-C", out, "--strip-components=1", "--no-same-owner").Run()
		problems = append(problems, judgeExtraction(t, "GNU tar", root, "gnu", out, out, runErr == nil, want(true))...)
	}
	if py := pythonExtractor(); py != nil {
		out := filepath.Join(root, "py", "out")
		os.MkdirAll(out, 0o755)
		ok := py.extract(t, tarball, out)
		problems = append(problems, judgeExtraction(t, "python tarfile", root, "py", out, filepath.Join(out, c.Top), ok, want(false))...)
	}
	return problems
}

func judgeExtraction(t *testing.T, who, root, sub, out, inside string, ok bool, want []string) []string {
	var problems, got []string
	within := func(p string) bool { return p == inside || strings.HasPrefix(p, inside+string(filepath.Separator)) }
	filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == sub || p == out || strings.HasPrefix(out, p+string(filepath.Separator)) {
			return nil // the directories above the extraction
		}
		if !within(p) {
			problems = append(problems, who+" wrote "+filepath.ToSlash(rel)+" outside "+filepath.Base(inside)+"/")
			return nil
		}
		if name, _ := filepath.Rel(out, p); p != inside && p != filepath.Join(out, filepath.Base(inside)) {
			got = append(got, filepath.ToSlash(name))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if real, err := filepath.EvalSymlinks(p); err == nil && !within(real) {
				problems = append(problems, who+" made "+filepath.ToSlash(rel)+" a symlink to "+real+", outside "+filepath.Base(inside)+"/")
			}
		}
		return nil
	})
	slices.Sort(got)
	if ok && len(problems) == 0 && !slices.Equal(got, want) {
		problems = append(problems, who+" extracted "+strings.Join(got, ", ")+"; Read listed "+strings.Join(want, ", "))
	}
	return problems
}

func decompress(t *testing.T, data []byte) []byte {
	var r io.Reader
	if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
		r = zr
	} else if zr, err := zstd.NewReader(bytes.NewReader(data)); err == nil {
		defer zr.Close()
		r = zr
	} else {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(r) // what Read accepted; a bad checksum after it does not matter here
	return plain
}

// pyExtractor is one Python process per test binary that extracts the
// tarballs it is sent (a process per fuzz input would cost a quarter
// second each).
type pyExtractor struct {
	mu  sync.Mutex
	in  io.Writer
	out *bufio.Reader
}

var (
	pyOnce sync.Once
	py     *pyExtractor
)

const pyExtractScript = `import sys, tarfile
for line in sys.stdin:
    tarball, out = line.rstrip("\n").split("\t")
    try:
        with tarfile.open(tarball) as tf:
            if hasattr(tarfile, "fully_trusted_filter"):
                tf.extraction_filter = tarfile.fully_trusted_filter
            tf.extractall(out)
        print("ok", flush=True)
    except Exception as e:
        print("error", flush=True)
`

func pythonExtractor() *pyExtractor {
	pyOnce.Do(func() {
		bin, err := exec.LookPath("python3")
		if found, _ := filepath.Glob(filepath.Join(os.Getenv("HOME"), ".pyenv", "versions", "3.1*", "bin", "python3")); len(found) > 0 {
			bin, err = found[len(found)-1], nil // the interpreter itself, not pyenv's slow shim
		}
		if err != nil {
			return
		}
		cmd := exec.Command(bin, "-c", pyExtractScript)
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if cmd.Start() != nil {
			return
		}
		py = &pyExtractor{in: in, out: bufio.NewReader(out)}
	})
	return py
}

func (p *pyExtractor) extract(t *testing.T, tarball, out string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.in, tarball+"\t"+out+"\n"); err != nil {
		t.Fatalf("python extractor: %v", err)
	}
	reply, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("python extractor: %v", err)
	}
	return reply == "ok\n"
}
