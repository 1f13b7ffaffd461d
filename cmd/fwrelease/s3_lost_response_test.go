package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// lostResponses sits in front of S3 on 127.0.0.1: the first successful
// PutObject of each key reaches S3, which stores it, and then the
// connection is cut instead of answering, as when a response is lost on
// the way back. It counts the writes S3 accepted per key.
type lostResponses struct {
	URL     string
	mu      sync.Mutex
	stored  map[string]int // key → PUTs answered 2xx
	dropped map[string]bool
}

func startLostResponses(t *testing.T, endpoint string) *lostResponses {
	target, _ := url.Parse(endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	l := &lostResponses{stored: map[string]int{}, dropped: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Query().Has("uploadId") {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		l.mu.Lock()
		ok := rec.Code/100 == 2
		if ok {
			l.stored[r.URL.Path]++
		}
		drop := ok && !l.dropped[r.URL.Path]
		l.dropped[r.URL.Path] = l.dropped[r.URL.Path] || drop
		l.mu.Unlock()
		if drop {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// Every conditional write's response is lost once; the SDK's retry meets
// 412 PreconditionFailed, which reading the object back resolves: the
// release completes, each object written once, with our bytes,
// latest.json included.
func TestReleaseThroughLostS3Responses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	srv := testserver.StartS3(t, "releases")
	proxy := startLostResponses(t, srv.Endpoint)
	s3c := publicRead(t, srv, "releases")
	dir := t.TempDir()
	cfg, _ := s3OnlyConfig(t, dir, proxy.URL)
	dist := filepath.Join(dir, "dist")
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit)
	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64")
	if r.code != 0 {
		t.Fatalf("release through lost responses: exit %d\n%s", r.code, r.stderr)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	want := []string{
		"flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz", "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz.sigstore.json",
		"manifest.json", "manifest.json.sigstore.json",
	}
	for _, name := range want {
		key := "flash-worker/v1.2.0/" + name
		local, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fetch(t, s3c, key)
		if err != nil || !bytes.Equal(got, local) {
			t.Errorf("s3 %s: %d bytes (%v), want the %d bytes of dist/%s", key, len(got), err, len(local), name)
		}
		if n := proxy.stored["/releases/"+key]; n != 1 {
			t.Errorf("%s was written %d times, want once", key, n)
		}
	}
	if n := proxy.stored["/releases/flash-worker/latest.json"]; n != 1 {
		t.Errorf("latest.json was written %d times, want once", n)
	}
	latest, err := fetch(t, s3c, "flash-worker/latest.json")
	if err != nil || !strings.Contains(string(latest), `"1.2.0"`) {
		t.Errorf("latest.json: %s %v", latest, err)
	}
	if len(proxy.dropped) < len(want)+1 {
		t.Errorf("%d responses dropped; the test checked less than it says", len(proxy.dropped))
	}
}
