package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// S3 answering 503 SlowDown: the SDK's retries (with backoff) get through,
// and the object lands once.
func TestS3Throttled(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	var throttled atomic.Int32
	proxy := faultProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && throttled.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	obj := writeObject(t, t.TempDir(), "throttled.tar.gz", []byte("throttled bytes"))
	p := newS3(t, proxy)
	if _, err := p.Publish(context.Background(), obj); err != nil {
		t.Fatalf("publish through SlowDown: %v", err)
	}
	if throttled.Load() < 3 {
		t.Errorf("the proxy throttled %d requests; the test checked nothing", throttled.Load())
	}
	if data, _ := getObject(t, p, "flash-worker/"+obj.Key); string(data) != "throttled bytes" {
		t.Errorf("stored %q", data)
	}
}

// Two publishes of one name with different bytes at the same moment: one
// wins, the other is refused; the object is whole, one or the other.
func TestS3ConcurrentPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	contents := []string{strings.Repeat("a", 1<<20), strings.Repeat("b", 1<<20)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range contents {
		obj := writeObject(t, t.TempDir(), "race.tar.gz", []byte(contents[i]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newS3(t, srv.Endpoint).Publish(context.Background(), obj)
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if !errors.Is(err, ErrExists) && !strings.Contains(err.Error(), "PreconditionFailed") && !strings.Contains(err.Error(), "412") {
				t.Errorf("the loser failed for another reason: %v", err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d of 2 racing publishes failed, want exactly 1: %v", failed, errs)
	}
	p := newS3(t, srv.Endpoint)
	data, _ := getObject(t, p, "flash-worker/v1.2.0/race.tar.gz")
	if string(data) != contents[0] && string(data) != contents[1] {
		t.Errorf("the object is mixed: %d bytes", len(data))
	}
}

// A GET whose response is cut off mid-way is resumed, and reads whole.
func TestS3CutOffDownloadResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	data := bytes.Repeat([]byte("flash-worker "), 300000)
	obj := writeObject(t, t.TempDir(), "cut.tar.gz", data)
	if _, err := newS3(t, srv.Endpoint).Publish(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	var cut atomic.Int32
	target, _ := url.Parse(srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Range") != "" || cut.Add(1) != 1 {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))
	defer proxy.Close()
	body, err := newS3(t, proxy.URL).Fetch(context.Background(), obj.Key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if cut.Load() < 1 {
		t.Error("no download was cut; the test checked nothing")
	}
}
