// Package testserver starts the real servers the integration tests use, on
// 127.0.0.1 only, and stops them when the test ends. A missing server fails
// the test (it would otherwise pass without checking anything); -short
// skips the tests that need one.
package testserver

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary finds a Go-installed tool on PATH or in ~/go/bin. Under -short it
// skips the test instead: -short promises to need nothing installed.
func Binary(t testing.TB, name, install string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; skipped with -short", name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, "go", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("%s not found on PATH or in ~/go/bin; install it: go install %s (.ci/run does)", name, install)
	return ""
}

// FreeAddr returns a loopback address with a port nobody listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// start runs cmd until the test ends, logging to a file, and waits until
// it listens on addr.
func start(t testing.TB, addr string, cmd *exec.Cmd) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), filepath.Base(cmd.Path)+".log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		out.Close()
	})
	waitListening(t, addr, exited, logFile)
}

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string, exited <-chan struct{}, logFile string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			deadline = time.Now()
		case <-time.After(50 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(logFile)
	t.Fatalf("the server did not start listening on %s:\n%s", addr, log)
}

// S3 is a running S3 server.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Root      string // the posix backend's directory: one subdirectory per bucket
}

// StartS3 runs versitygw with the posix backend (it checks request
// signatures) and creates the named buckets.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	bin := Binary(t, "versitygw", "github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	root := t.TempDir()
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &S3{AccessKey: "fwrelease-test", SecretKey: "fwrelease-test-secret-key", Root: root}
	addr := FreeAddr(t)
	s.Endpoint = "http://" + addr
	start(t, addr, exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", root))
	return s
}

// Env is the environment the AWS SDK reads credentials from.
func (s *S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env for the current test.
func (s *S3) SetEnv(t *testing.T) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// StartRegistry runs the distribution registry with in-memory storage and
// returns its host:port.
func StartRegistry(t testing.TB) string {
	t.Helper()
	bin := Binary(t, "registry", "github.com/distribution/distribution/v3/cmd/registry@v3.1.2")
	addr := FreeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := "version: 0.1\nlog:\n  level: error\nstorage:\n  inmemory: {}\n  delete: {enabled: true}\nhttp:\n  addr: " + addr + "\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	start(t, addr, cmd)
	return addr
}
