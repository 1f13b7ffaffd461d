package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// Ctrl-C at any point — while building, uploading tarballs, uploading the
// manifest's signature, or moving latest.json — leaves consumers on a
// consistent release (never a manifest naming a missing file), and the next
// run finishes the job.
func TestInterruptedReleaseResumes(t *testing.T) {
	skipShort(t)
	t.Parallel()
	points := []struct {
		name    string
		trigger func(r *http.Request) bool // nil: interrupt during the build
	}{
		{"during the build", nil},
		{"uploading a tarball", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, ".tar.gz") }},
		{"uploading the manifest's signature", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "manifest.json.sigstore.json") }},
		{"moving latest.json", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "latest.json") }},
	}
	for _, pt := range points {
		t.Run(pt.name, func(t *testing.T) {
			t.Parallel()
			interruptAt(t, pt.trigger)
		})
	}
}

func interruptAt(t *testing.T, trigger func(*http.Request) bool) {
	srv := testserver.StartS3(t, "releases")
	s3c := publicRead(t, srv, "releases")
	target, _ := url.Parse(srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	hit := make(chan struct{}, 64)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && trigger != nil && trigger(r) {
			hit <- struct{}{}
			time.Sleep(300 * time.Millisecond) // slow enough to be interrupted
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	dir := t.TempDir()
	cfg, pub := s3OnlyConfig(t, dir, proxy.URL)
	dist := filepath.Join(dir, "dist")
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit)

	cmd := exec.Command(bin, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if trigger == nil {
		// Wait until the build is under way (its work tree exists), so the
		// signal meets fwrelease's handler, not a process still starting.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dist, ".work")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
	} else {
		select {
		case <-hit:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the interruption point was never reached:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("an interrupted release exited 0:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("no word of the interruption:\n%s", stderr.String())
	}
	// Whatever is visible is consistent: a published manifest names only
	// files that are there.
	if body, err := s3c.Fetch(context.Background(), "flash-worker/v1.2.0/manifest.json"); err == nil {
		body.Close()
		if v := run(t, dir, nil, "--allow-insecure", "verify", srv.Endpoint+"/releases/flash-worker/v1.2.0/manifest.json", "--key", pub); v.code != 0 {
			t.Errorf("after the interruption the published manifest does not verify:\n%s%s", v.stdout, v.stderr)
		}
	}
	up, err := s3c.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("releases")})
	if err != nil || len(up.Uploads) != 0 {
		t.Errorf("open multipart uploads after the interruption: %v %v", up, err)
	}

	go func() {
		for range hit {
		}
	}()
	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("the next run: %s", r.stderr)
	}
	if v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", pub); v.code != 0 {
		t.Errorf("verify after the next run: %s%s", v.stdout, v.stderr)
	}
	latest, err := fetch(t, s3c, "flash-worker/latest.json")
	if err != nil || !strings.Contains(string(latest), `"version": "1.2.0"`) {
		t.Errorf("latest.json after the next run: %v", err)
	}
}
