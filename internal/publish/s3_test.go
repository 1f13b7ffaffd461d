package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

func newS3(t *testing.T, endpoint string) *S3 {
	t.Helper()
	p, err := NewS3(context.Background(), S3Options{Bucket: "releases", Prefix: "flash-worker", Endpoint: endpoint, PathStyle: true, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeObject(t *testing.T, dir, name string, data []byte) artifact.Artifact {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return artifact.Artifact{Release: manifest.Release{Version: "1.2.0"}, File: name, Path: p, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// randomObject writes size incompressible bytes to a file named name.
func randomObject(t *testing.T, name string, size int) ([]byte, artifact.Artifact) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	return data, writeObject(t, t.TempDir(), name, data)
}

// multipartS3 uploads in 5 MiB parts (S3's smallest) above 5 MiB.
func multipartS3(t *testing.T, endpoint string) *S3 {
	p := newS3(t, endpoint)
	p.Threshold, p.PartSize = 5<<20, 5<<20
	return p
}

func getObject(t *testing.T, p *S3, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := p.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &p.Bucket, Key: &key})
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer out.Body.Close()
	data, _ := io.ReadAll(out.Body)
	return data, out
}

func openUploads(t *testing.T, p *S3) int {
	t.Helper()
	out, err := p.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &p.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Logf("open upload: %s %s", deref(u.Key), deref(u.UploadId))
	}
	return len(out.Uploads)
}

func TestS3PublishAgainstVersity(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	obj := writeObject(t, dir, "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz", []byte("tarball bytes"))

	p := newS3(t, srv.Endpoint)
	at, err := p.Publish(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.Endpoint + "/releases/flash-worker/v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz"; at.URL != want || at.Channel != "s3" || at.Ref {
		t.Errorf("location %+v, want %s on s3", at, want)
	}
	data, out := getObject(t, p, "flash-worker/"+obj.Key())
	if string(data) != "tarball bytes" {
		t.Errorf("stored %q", data)
	}
	if ct, cc := deref(out.ContentType), deref(out.CacheControl); ct != "application/gzip" || cc != immutableCache {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	// A plain GET over HTTP, as the start command does, sees the same.
	plain, hdr := plainGET(t, p, at.URL)
	if string(plain) != "tarball bytes" || hdr.Get("Content-Type") != "application/gzip" || hdr.Get("Cache-Control") != immutableCache {
		t.Errorf("plain GET %s: %q, Content-Type %q, Cache-Control %q", at.URL, plain, hdr.Get("Content-Type"), hdr.Get("Cache-Control"))
	}
	if p.Uploaded != obj.Size {
		t.Errorf("uploaded %d bytes, want %d", p.Uploaded, obj.Size)
	}

	t.Run("re-publish is a no-op", func(t *testing.T) {
		again := newS3(t, srv.Endpoint)
		if _, err := again.Publish(ctx, obj); err != nil {
			t.Fatal(err)
		}
		if again.Uploaded != 0 {
			t.Errorf("re-publishing identical bytes uploaded %d bytes", again.Uploaded)
		}
	})

	t.Run("different bytes are refused", func(t *testing.T) {
		other := writeObject(t, t.TempDir(), filepath.Base(obj.Path), []byte("other bytes"))
		_, err := newS3(t, srv.Endpoint).Publish(ctx, other)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), obj.SHA256) || !strings.Contains(err.Error(), other.SHA256) || !strings.Contains(err.Error(), "s3://releases/flash-worker/"+obj.Key()) {
			t.Errorf("error = %v; want ErrExists naming the key and both digests", err)
		}
		if data, _ := getObject(t, p, "flash-worker/"+obj.Key()); string(data) != "tarball bytes" {
			t.Errorf("the refused overwrite changed the object to %q", data)
		}
		replacer := newS3(t, srv.Endpoint)
		replacer.Replace = true
		if _, err := replacer.Publish(ctx, other); err != nil {
			t.Fatal(err)
		}
		if data, _ := getObject(t, p, "flash-worker/"+obj.Key()); string(data) != "other bytes" {
			t.Errorf("--replace did not replace: %q", data)
		}
	})

	t.Run("multipart round trip", func(t *testing.T) {
		big, o := randomObject(t, "big.tar.gz", 11<<20+12345)
		mp := multipartS3(t, srv.Endpoint)
		var reported atomic.Int64
		mp.Progress = func(name string, done, total int64) {
			if name != o.Key() || total != o.Size {
				t.Errorf("progress for %s of %d bytes", name, total)
			}
			reported.Store(done)
		}
		if _, err := mp.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
		if reported.Load() != o.Size {
			t.Errorf("progress reached %d of %d bytes", reported.Load(), o.Size)
		}
		if data, _ := getObject(t, p, "flash-worker/"+o.Key()); !bytes.Equal(data, big) {
			t.Errorf("multipart object differs (%d bytes back)", len(data))
		}
		if n := openUploads(t, p); n != 0 {
			t.Errorf("%d multipart uploads left open", n)
		}
	})

	t.Run("a failed multipart upload is aborted", func(t *testing.T) {
		_, o := randomObject(t, "aborted.tar.gz", 11<<20)
		var parts atomic.Int32
		proxy := faultProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("partNumber") == "2" {
				parts.Add(1)
				http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
				return true
			}
			return false
		})
		mp := multipartS3(t, proxy)
		if _, err := mp.Publish(ctx, o); err == nil {
			t.Fatal("publish through a failing proxy succeeded")
		}
		if parts.Load() == 0 {
			t.Fatal("the proxy failed no part; the test checked nothing")
		}
		if n := openUploads(t, p); n != 0 {
			t.Errorf("%d multipart uploads left open after a failure", n)
		}
		if _, err := p.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &p.Bucket, Key: ptr("flash-worker/" + o.Key())}); !isNotFound(err) {
			t.Errorf("a failed upload left an object: %v", err)
		}
		// The next run completes it.
		if _, err := multipartS3(t, srv.Endpoint).Publish(ctx, o); err != nil {
			t.Fatalf("the next run: %v", err)
		}
	})

	t.Run("a lost CompleteMultipartUpload response", func(t *testing.T) {
		big, o := randomObject(t, "lost.tar.gz", 11<<20)
		var dropped atomic.Int32
		proxy := dropCompleteResponse(t, srv.Endpoint, &dropped)
		mp := multipartS3(t, proxy)
		if _, err := mp.Publish(ctx, o); err != nil {
			t.Fatalf("publish with a lost Complete response: %v", err)
		}
		if dropped.Load() == 0 {
			t.Fatal("the proxy dropped no response; the test checked nothing")
		}
		if data, _ := getObject(t, p, "flash-worker/"+o.Key()); !bytes.Equal(data, big) {
			t.Error("object differs")
		}
		if n := openUploads(t, p); n != 0 {
			t.Errorf("%d multipart uploads left open", n)
		}
	})

	t.Run("plain http needs --allow-insecure and loopback", func(t *testing.T) {
		_, err := NewS3(ctx, S3Options{Bucket: "b", Endpoint: srv.Endpoint})
		if err == nil || !strings.Contains(err.Error(), "--allow-insecure") {
			t.Errorf("plain http without --allow-insecure: %v", err)
		}
		_, err = NewS3(ctx, S3Options{Bucket: "b", Endpoint: "http://s3.example.com", AllowInsecure: true})
		if err == nil || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("plain http to a remote host: %v", err)
		}
	})
}

// faultProxy forwards to endpoint unless fault handles the request.
func faultProxy(t *testing.T, endpoint string, fault func(http.ResponseWriter, *http.Request) bool) string {
	target, _ := url.Parse(endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault != nil && fault(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// dropCompleteResponse forwards every request, but after the first
// CompleteMultipartUpload reaches the server, cuts the connection instead of
// answering: the object is complete, the client does not know.
func dropCompleteResponse(t *testing.T, endpoint string, dropped *atomic.Int32) string {
	target, _ := url.Parse(endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isComplete := r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
		if !isComplete || dropped.Load() > 0 {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		dropped.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr(s string) *string { return &s }
