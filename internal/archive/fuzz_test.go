package archive

import (
	"archive/tar"
	"bytes"
	"path"
	"strings"
	"testing"
)

// FuzzRead: whatever the bytes, Read never panics, and a tarball it calls
// safe has one top directory, no absolute or ".." paths and no special
// files.
func FuzzRead(f *testing.F) {
	top := &tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755}
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/.version", Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/../x", Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add(rawTar(f, top, &tar.Header{Name: "flash-worker/l", Typeflag: tar.TypeSymlink, Linkname: "../../etc"}))
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
	})
}
