package build

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/target"
	"github.com/runpod-workers/fwrelease/internal/uvlock"
)

// hostile serves /endless (bytes as fast as they go; it stops by itself
// at 64 MiB, far past any bound the tests set), /stall
// (headers and one byte, then nothing) and /mute (no response at all),
// until the test ends. sent counts the bytes /endless got written.
func hostile(t *testing.T) (srv *httptest.Server, sent *atomic.Int64) {
	sent = new(atomic.Int64)
	done := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		switch r.URL.Path {
		case "/endless":
			for range 1024 {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
			return
		case "/stall":
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
		case "/mute":
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, sent
}

// A reader that stops at the bound leaves the rest unsent: what the
// server got out is the bound plus what loopback's socket buffers hold.
func checkCutOff(t *testing.T, sent *atomic.Int64) {
	t.Helper()
	if n := sent.Load(); n > 32<<20 {
		t.Errorf("the server sent %d bytes: the download was read past its bound", n)
	}
	sent.Store(0)
}

// shortBounds makes the idle timeout 300ms and the default extra file
// bound 2 MiB, so that the bounds show in a fraction of a second.
func shortBounds(t *testing.T) {
	savedIdle, savedMax := idleTimeout, defaultExtraMaxSize
	idleTimeout, defaultExtraMaxSize = 300*time.Millisecond, 2<<20
	t.Cleanup(func() { idleTimeout, defaultExtraMaxSize = savedIdle, savedMax })
}

// An extra file from a server that never stops sending is cut off at its
// max_size (the default when unset), and one that stalls, before or after
// its headers, fails once no byte came for the idle timeout: the build
// neither fills the disk nor hangs.
func TestExtraFileDownloadBounded(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	shortBounds(t)
	srv, sent := hostile(t)
	x86 := []target.Target{{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}}
	sum := config.Digests{"": strings.Repeat("0", 64)}
	tests := []struct {
		name  string
		extra config.Extra
		want  string
	}{
		{"endless, max_size", config.Extra{URL: srv.URL + "/endless", SHA256: sum, MaxSize: 1 << 20},
			srv.URL + "/endless sends more than extra_files[0].max_size (1048576 bytes); stopped reading there"},
		{"endless, default", config.Extra{URL: srv.URL + "/endless", SHA256: sum},
			srv.URL + "/endless sends more than the default extra_files[0].max_size (2097152 bytes)"},
		{"stalls after a byte", config.Extra{URL: srv.URL + "/stall", SHA256: sum},
			"the server sent nothing for 300ms"},
		{"stalls before the headers", config.Extra{URL: srv.URL + "/mute", SHA256: sum},
			"downloading " + srv.URL + "/mute: the server sent nothing for 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Builder{Config: &config.Config{ExtraFiles: []config.Extra{tt.extra}}, Dist: t.TempDir(), AllowInsecure: true}
			// Without the bounds the test fails here, not hangs.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := b.fetchExtras(ctx, x86)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			checkCutOff(t, sent)
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, "fwrelease", "sha256", "*"))
	if len(leftovers) > 0 {
		t.Errorf("the cache kept %v", leftovers)
	}
}

// A locked wheel is read up to the size the lock records for it, plus one
// byte: an endless server fails the build there.
func TestLockedWheelDownloadBounded(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	shortBounds(t)
	srv, sent := hostile(t)
	sel := uvlock.Selected{Name: "big", Version: "1.0", Wheel: uvlock.File{URL: srv.URL + "/endless", Hash: "sha256:" + strings.Repeat("2", 64), Size: 5000}}
	b := &Builder{Config: &config.Config{}, Dist: t.TempDir(), AllowInsecure: true}
	cache, _ := cacheDir(b.Dist)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.fetchWheel(ctx, cache, sel)
	if err == nil || !strings.Contains(err.Error(), "/endless sends more than the size uv.lock records for it (5000 bytes)") {
		t.Errorf("endless wheel: %v", err)
	}
	checkCutOff(t, sent)
	sel.Wheel.URL = srv.URL + "/stall"
	if _, err := b.fetchWheel(ctx, cache, sel); err == nil || !strings.Contains(err.Error(), "the server sent nothing for 300ms") {
		t.Errorf("stalling wheel: %v", err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) > 0 {
		t.Errorf("the cache kept %d files", len(entries))
	}
}
