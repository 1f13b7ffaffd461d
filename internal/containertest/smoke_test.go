package containertest

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each base image runs what it claims to have, and lacks what it claims to
// lack: the slim look-alikes their interpreter (libpython found, pip there)
// and no curl or wget; the GPU look-alike torch for 3.12 only.
func TestBaseImages(t *testing.T) {
	rt := New(t)
	for _, v := range []string{"3.10", "3.11", "3.12", "3.13"} {
		t.Run("slim-"+v, func(t *testing.T) {
			img := rt.BaseImage(t, "slim-"+v)
			res := rt.Run(t, Options{Image: img, Cmd: []string{"sh", "-c",
				`python3 -c 'import sys, ssl, sqlite3, ctypes, zlib, lzma, bz2; print(sys.version_info[:2], sys.prefix)' && python3 -m pip --version >/dev/null && echo pip ok; command -v curl wget || echo no-downloader`}})
			want := "(" + strings.Replace(v, ".", ", ", 1) + ") /usr/local\npip ok\nno-downloader\n"
			if res.Code != 0 || res.Stdout != want {
				t.Fatalf("got exit %d, stdout %q, want %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
			}
		})
	}
	t.Run("gpu", func(t *testing.T) {
		img := rt.BaseImage(t, "gpu")
		res := rt.Run(t, Options{Image: img, Cmd: []string{"sh", "-c", `
			python3 -c 'import sys; print(sys.version_info[:2])'
			for v in 3.10 3.11 3.12 3.13; do python$v -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "$v: no torch"; done`}})
		want := "(3, 10)\n3.10: no torch\n3.11: no torch\n2.4.0\n3.13: no torch\n"
		if res.Code != 0 || res.Stdout != want {
			t.Fatalf("got exit %d, stdout %q, want %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
		}
	})
	t.Run("busybox", func(t *testing.T) {
		img := rt.BaseImage(t, "busybox")
		res := rt.Run(t, Options{Image: img, Cmd: []string{"sh", "-c", "echo hi | sha256sum; command -v python3 bash || echo none"}})
		want := "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4  -\nnone\n"
		if res.Code != 0 || res.Stdout != want {
			t.Fatalf("got exit %d, stdout %q, want %q; stderr:\n%s", res.Code, res.Stdout, want, res.Stderr)
		}
	})
}
