package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	if data, _ := getObject(t, p, "flash-worker/"+obj.Key()); string(data) != "throttled bytes" {
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

// A GET whose response is cut off mid-way is resumed from the byte reached
// (a Range request pinned to the object's ETag, as the server saw it), and
// reads whole.
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
	etag := deref(headObject(t, newS3(t, srv.Endpoint), "flash-worker/"+obj.Key()).ETag)
	// The first whole-object GET gets its headers and half its body, then
	// the connection closes: the client has read exactly half.
	half := len(data) / 2
	var cut atomic.Int32
	target, _ := url.Parse(srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	rec := testserver.RecordWith(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.Header.Get("Range") != "" || cut.Add(1) != 1 {
			return false
		}
		full := httptest.NewRecorder()
		rp.ServeHTTP(full, r)
		for k, v := range full.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(full.Code)
		w.Write(full.Body.Bytes()[:half])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	body, err := newS3(t, rec.URL).Fetch(context.Background(), obj.Key())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if cut.Load() < 1 {
		t.Fatal("no download was cut; the test checked nothing")
	}
	var gets []testserver.Request
	for _, q := range rec.Requests() {
		if q.Method == http.MethodGet {
			gets = append(gets, q)
		}
	}
	if len(gets) != 2 {
		t.Fatalf("%d GETs reached the server, want the cut one and one resuming it: %+v", len(gets), gets)
	}
	resumed := gets[1].Header
	if want := fmt.Sprintf("bytes=%d-", half); resumed.Get("Range") != want {
		t.Errorf("the resuming GET sent Range %q, want %q (from the byte reached)", resumed.Get("Range"), want)
	}
	if resumed.Get("If-Match") != etag || etag == "" {
		t.Errorf("the resuming GET sent If-Match %q, want the object's ETag %q", resumed.Get("If-Match"), etag)
	}
}
