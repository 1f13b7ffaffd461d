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

// Ctrl-C in the middle of publishing leaves consumers on the previous
// release, and the next run finishes the job.
func TestInterruptedReleaseResumes(t *testing.T) {
	skipShort(t)
	srv := testserver.StartS3(t, "releases")
	s3c := publicRead(t, srv, "releases")
	target, _ := url.Parse(srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	uploading := make(chan struct{}, 16)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			uploading <- struct{}{}
			time.Sleep(300 * time.Millisecond) // slow enough to be interrupted
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	dir := t.TempDir()
	cfg, pub := releaseConfig(t, dir, proxy.URL)
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(data), "  local: {dir: "+filepath.Join(dir, "mirror")+"}\n", "", 1)), 0o644)
	dist := filepath.Join(dir, "dist")
	env := append(os.Environ(), append(srv.Env(), "GITHUB_SHA="+fixedCommit)...)

	cmd := exec.Command(bin, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-uploading:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no upload started:\n%s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("an interrupted release exited 0:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("no word of the interruption:\n%s", stderr.String())
	}
	for _, key := range []string{"flash-worker/v1.2.0/manifest.json", "flash-worker/latest.json"} {
		if body, err := s3c.Fetch(context.Background(), key); err == nil {
			body.Close()
			t.Errorf("%s exists after an interrupted release", key)
		}
	}
	up, err := s3c.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("releases")})
	if err != nil || len(up.Uploads) != 0 {
		t.Errorf("open multipart uploads after the interruption: %v %v", up, err)
	}

	go func() {
		for range uploading {
		}
	}()
	r := run(t, dir, append(srv.Env(), "GITHUB_SHA="+fixedCommit), "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("the next run: %s", r.stderr)
	}
	if v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", pub); v.code != 0 {
		t.Errorf("verify after the next run: %s%s", v.stdout, v.stderr)
	}
}
