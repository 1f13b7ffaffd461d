package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := Write(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(p); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 whatever the umask", info.Mode().Perm())
	}
	// A hard link to the old file keeps the old bytes.
	link := filepath.Join(dir, "link")
	os.Link(p, link)
	if err := Write(p, []byte("newer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(link); string(got) != "new" {
		t.Errorf("written through the link: %q", got)
	}
	// A failed write leaves the file as it was and no temporary file.
	err := WriteWith(p, 0o644, func(w io.Writer) error { w.Write([]byte("half")); return errors.New("boom") })
	if err == nil {
		t.Fatal("the error was lost")
	}
	if got, _ := os.ReadFile(p); string(got) != "newer" {
		t.Errorf("a failed write changed the file: %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
}
