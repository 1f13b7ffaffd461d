package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A download whose body is cut off mid-way is resumed with a Range
// request, and the bytes come out whole.
func TestDownloadResumesCutOffBody(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data)
	var cuts atomic.Int32
	var resumedWith atomic.Value // the resuming request's headers
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if cuts.Load() > 0 {
			resumedWith.CompareAndSwap(nil, r.Header.Clone())
		}
		if r.Header.Get("Range") == "" && cuts.Add(1) == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/3])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		http.ServeContent(w, r, "x.tar.gz", time.Unix(0, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	o := Options{AllowInsecure: true, HTTP: srv.Client()}
	body, err := o.open(context.Background(), srv.URL+"/x.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("got %d bytes, want %d identical", len(got), len(data))
	}
	if cuts.Load() != 1 {
		t.Errorf("the server cut %d downloads; the test checked nothing", cuts.Load())
	}
	// The resume asks for the rest only, and only of the same file.
	h, _ := resumedWith.Load().(http.Header)
	if rng := h.Get("Range"); !strings.HasPrefix(rng, "bytes=") || !strings.HasSuffix(rng, "-") {
		t.Errorf("the resuming request sent Range %q, want bytes=N- from the byte reached", rng)
	}
	if h.Get("If-Range") != `"v1"` {
		t.Errorf("the resuming request sent If-Range %q, want the ETag \"v1\"", h.Get("If-Range"))
	}
}
