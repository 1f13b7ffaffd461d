package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// publicRead lets anonymous GETs read the bucket, as a release bucket (or
// its CDN) does for the containers that download from it.
func publicRead(t *testing.T, srv *testserver.S3, bucket string) *publish.S3 {
	t.Helper()
	p, err := publish.NewS3(context.Background(), publish.S3Options{Bucket: bucket, Endpoint: srv.Endpoint, PathStyle: true, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	// The server's keys for this client only: the environment is shared by
	// the tests running in parallel (fwrelease gets srv.Env()).
	p.Client = s3.New(p.Client.Options(), func(o *s3.Options) {
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}, nil
		})
	})
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
	if _, err := p.Client.PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: &policy}); err != nil {
		t.Fatalf("setting a public-read policy: %v", err)
	}
	return p
}

// releaseConfig copies the example and adds local and S3 channels and a key.
// extra settings, by dotted key, are set on top.
func releaseConfig(t *testing.T, dir, endpoint string, extra ...map[string]any) (cfg, pub string) {
	return withChannels(t, dir, endpoint, true, extra)
}

// s3OnlyConfig is releaseConfig without the local mirror, whose copy would
// otherwise make every release complete.
func s3OnlyConfig(t *testing.T, dir, endpoint string) (cfg, pub string) {
	return withChannels(t, dir, endpoint, false, nil)
}

// withChannels copies the example and adds a key, an S3 channel and, with
// localMirror, a local one.
func withChannels(t *testing.T, dir, endpoint string, localMirror bool, extra []map[string]any) (cfg, pub string) {
	t.Helper()
	src := filepath.Join(dir, "src")
	c := exampleWorker(t, src)
	pub = filepath.Join(dir, "release.pub")
	writeKeyPair(t, filepath.Join(src, "release.key"), pub)
	c.set("sign", map[string]any{"key": "release.key"}).
		set("publish.s3", map[string]any{"bucket": "releases", "prefix": "flash-worker", "region": "us-east-1", "endpoint": endpoint, "path_style": true})
	if localMirror {
		c.set("publish.local", map[string]any{"dir": filepath.Join(dir, "mirror")})
	}
	for _, settings := range extra {
		c.setAll(settings)
	}
	return c.write(t, filepath.Join(src, "fwrelease.yaml")), pub
}

func TestReleaseToLocalAndS3(t *testing.T) {
	skipShort(t)
	t.Parallel()
	srv := testserver.StartS3(t, "releases")
	s3c := publicRead(t, srv, "releases")
	// Every request to S3 goes through a recorder, so the re-run below is
	// judged by what reached the server.
	rec := testserver.Record(t, srv.Endpoint)
	dir := t.TempDir()
	cfg, pub := releaseConfig(t, dir, rec.URL)
	dist := filepath.Join(dir, "dist")
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit)

	r := run(t, dir, env, "--config", cfg, "--dist", dist, "release")
	if r.code == 0 {
		t.Fatal("a release to a plain-http endpoint succeeded without --allow-insecure")
	}
	if !strings.Contains(r.stderr, "--allow-insecure") {
		t.Errorf("plain http without --allow-insecure: %s", r.stderr)
	}
	r = run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("release: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "msg=uploaded"); n < 10 {
		t.Errorf("%d uploads logged, want the 4 tarballs, 4 bundles, the manifest and its bundle", n)
	}
	data, err := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Artifacts {
		if len(a.URLs) != 2 || !strings.HasPrefix(a.URLs[0], "file://") || a.URLs[1] != rec.URL+"/releases/flash-worker/v1.2.0/"+a.File {
			t.Errorf("%s: urls %v", a.Target.ID, a.URLs)
		}
		if a.Signature == nil || len(a.Signature.URLs) != 2 {
			t.Errorf("%s: signature %+v", a.Target.ID, a.Signature)
		}
	}
	// The manifest on S3 is the one in dist, and latest.json points at it.
	remote, err := fetch(t, s3c, "flash-worker/v1.2.0/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(remote) != string(data) {
		t.Error("the published manifest differs from dist/manifest.json")
	}
	latestJSON, err := fetch(t, s3c, "flash-worker/latest.json")
	if err != nil {
		t.Fatal(err)
	}
	var latest publish.Latest
	json.Unmarshal(latestJSON, &latest)
	if latest.Version != "1.2.0" || latest.Manifest != "v1.2.0/manifest.json" {
		t.Errorf("latest.json = %+v", latest)
	}

	// Everything verifies on both channels, over plain loopback HTTP for S3.
	v := run(t, dir, nil, "--allow-insecure", "verify", rec.URL+"/releases/flash-worker/v1.2.0/manifest.json", "--key", pub)
	if v.code != 0 || strings.Count(v.stdout, " ok\n") != 24 || strings.Count(v.stdout, "s3 (worker layer)") != 4 { // 4 tarballs and 8 layer files, on each channel
		t.Errorf("verify: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}

	// A re-run converges without transferring a byte of any artifact: the
	// server sees no PUT or POST at all.
	if len(rec.Writes()) < 10 {
		t.Fatalf("the recorder saw %d writes of the first release; the re-run check below would check nothing", len(rec.Writes()))
	}
	rec.Reset()
	r = run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", r.code, r.stderr)
	}
	for _, q := range rec.Writes() {
		t.Errorf("the re-run sent S3 %s %s?%s", q.Method, q.Path, q.Query.Encode())
	}
	if len(rec.Requests()) == 0 {
		t.Error("the re-run sent S3 nothing; it cannot have checked what is there")
	}
	if n := strings.Count(r.stderr, "msg=uploaded"); n != 0 {
		t.Errorf("the re-run logged %d uploads:\n%s", n, r.stderr)
	}

	// latest.json never moves backwards.
	r = run(t, dir, env, "--config", cfg, "--dist", filepath.Join(dir, "dist-old"), "--allow-insecure", "release", "--version", "1.1.0")
	if r.code != 0 {
		t.Fatalf("release 1.1.0: %s", r.stderr)
	}
	latestJSON, _ = fetch(t, s3c, "flash-worker/latest.json")
	json.Unmarshal(latestJSON, &latest)
	if latest.Version != "1.2.0" {
		t.Errorf("releasing 1.1.0 after 1.2.0 moved latest.json to %s", latest.Version)
	}
}

// Different bytes under a published name are refused, naming the object,
// and nothing of the new release becomes visible.
func TestPublishRefusesOverwrite(t *testing.T) {
	skipShort(t)
	t.Parallel()
	srv := testserver.StartS3(t, "releases")
	s3c := publicRead(t, srv, "releases")
	dir := t.TempDir()
	cfg, _ := releaseConfig(t, dir, srv.Endpoint)
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit)
	dist := filepath.Join(dir, "dist")
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64"); r.code != 0 {
		t.Fatalf("release: %s", r.stderr)
	}
	manifestBefore, _ := fetch(t, s3c, "flash-worker/v1.2.0/manifest.json")

	// Same version, different bytes (unslimmed).
	r := run(t, dir, env, "--config", cfg, "--dist", filepath.Join(dir, "dist2"), "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64", "--no-slim")
	if r.code != 1 || !strings.Contains(r.stderr, "already published with different content") || !strings.Contains(r.stderr, "pass --replace") {
		t.Errorf("overwrite: exit %d, %s", r.code, r.stderr)
	}
	if after, _ := fetch(t, s3c, "flash-worker/v1.2.0/manifest.json"); string(after) != string(manifestBefore) {
		t.Error("a refused release changed the published manifest")
	}
}

// fetch reads an object of the S3 channel whole.
func fetch(t *testing.T, s3c *publish.S3, key string) ([]byte, error) {
	t.Helper()
	body, err := s3c.Fetch(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// A publish that fails half-way leaves consumers on the previous release:
// no manifest, no latest.json, no open multipart upload; the next run
// completes it.
func TestPublishFailsHalfWayThenCompletes(t *testing.T) {
	skipShort(t)
	t.Parallel()
	srv := testserver.StartS3(t, "releases")
	s3c := publicRead(t, srv, "releases")
	var puts atomic.Int32
	target, _ := url.Parse(srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The third artifact upload fails for good.
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".tar.gz") && puts.Add(1) == 3 {
			http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	dir := t.TempDir()
	cfg, pub := s3OnlyConfig(t, dir, proxy.URL)
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit)
	dist := filepath.Join(dir, "dist")

	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 1 || !strings.Contains(r.stderr, "publish artifacts to s3") {
		t.Fatalf("want the release to fail publishing artifacts: exit %d\n%s", r.code, r.stderr)
	}
	for _, key := range []string{"flash-worker/v1.2.0/manifest.json", "flash-worker/v1.2.0/manifest.json.sigstore.json", "flash-worker/latest.json"} {
		if body, err := s3c.Fetch(context.Background(), key); err == nil {
			body.Close()
			t.Errorf("%s exists after a failed release", key)
		}
	}
	if _, err := os.Stat(filepath.Join(dist, "manifest.json")); err == nil {
		t.Error("dist/manifest.json written by a failed release")
	}
	uploads, err := s3c.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("releases")})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("open multipart uploads: %v %v", uploads, err)
	}

	r = run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("the next run: %s", r.stderr)
	}
	v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", pub)
	if v.code != 0 || strings.Count(v.stdout, " ok ") != 4 {
		t.Errorf("verify after completing: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}
