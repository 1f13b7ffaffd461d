package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
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

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/sync/errgroup"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// cutter counts the responses of every proxy that shares it and cuts the
// cut-th (1-based; 0: none) in half: the status line, the headers and half
// the body are sent, then the connection is closed (a response with no
// body is dropped whole).
type cutter struct {
	mu       sync.Mutex
	n, cut   int
	cutWhat  string
	requests []string
}

func (c *cutter) proxy(t *testing.T, upstream string) string {
	target, _ := url.Parse(upstream)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		c.mu.Lock()
		c.n++
		what := fmt.Sprintf("%s %s → %d", r.Method, r.URL.Path, rec.Code)
		c.requests = append(c.requests, what)
		cut := c.n == c.cut
		if cut {
			c.cutWhat = what
		}
		c.mu.Unlock()
		if !cut {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.(*net.TCPConn).SetLinger(0)
		body := rec.Body.Bytes()
		if len(body) > 0 {
			writeHead(buf, rec, len(body))
			buf.Write(body[:len(body)/2])
			buf.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func writeHead(buf *bufio.ReadWriter, rec *httptest.ResponseRecorder, size int) {
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	rec.Header().Set("Content-Length", fmt.Sprint(size))
	rec.Header().Del("Transfer-Encoding")
	rec.Header().Write(buf)
	buf.WriteString("\r\n")
}

// Every response of a publish to S3, GitHub and an OCI registry is cut, one position per
// run, over the whole sequence of a run: each run still completes, its
// latest.json moved (the drop that failed releases was a 404 of
// latest.json cut mid-body).
func TestPublishSurvivesACutResponseAtEveryPosition(t *testing.T) {
	skipShort(t)
	srv := testserver.StartS3(t, "releases")
	dir := t.TempDir()
	cfg, _ := s3OnlyConfig(t, dir, srv.Endpoint)
	env := append(srv.Env(), "GITHUB_SHA="+fixedCommit, "GITHUB_TOKEN=ghp_cutTestToken")
	dist := filepath.Join(dir, "dist")
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "build", "--target", "py3.11-cpu-linux-x86_64"); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "sign"); r.code != 0 {
		t.Fatalf("sign: %s", r.stderr)
	}

	// publish runs one fresh release: its own S3 prefix, GitHub, registry
	// and dist, every response through one cutter.
	publish := func(run_ int, cut int) (result, *cutter) {
		c := &cutter{cut: cut}
		gh := testserver.StartGitHub(t, "ghp_cutTestToken")
		ghURL := c.proxy(t, gh.URL)
		s3 := c.proxy(t, srv.Endpoint)
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(reg.Close)
		p := readConfig(t, cfg).
			set("publish.s3", map[string]any{"bucket": "releases", "prefix": fmt.Sprintf("run%d", run_), "region": "us-east-1", "endpoint": s3, "path_style": true}).
			set("publish.github", map[string]any{"owner": "runpod-workers", "repo": "flash", "api_url": ghURL + "/api/v3/", "upload_url": ghURL + "/api/uploads/"}).
			set("publish.oci", map[string]any{"repository": strings.TrimPrefix(c.proxy(t, reg.URL), "http://") + "/flash-worker", "plain_http": true}).
			write(t, filepath.Join(filepath.Dir(cfg), fmt.Sprintf("run%d.yaml", run_)))
		d := filepath.Join(dir, fmt.Sprintf("dist%d", run_)) // publish writes the manifest there
		if err := os.CopyFS(d, os.DirFS(dist)); err != nil {
			t.Error(err)
		}
		r := run(t, dir, env, "--config", p, "--dist", d, "--allow-insecure", "publish", "--from", d)
		return r, c
	}
	r, whole := publish(0, 0)
	if r.code != 0 {
		t.Fatalf("publish with nothing cut: exit %d\n%s", r.code, r.stderr)
	}
	if whole.n < 10 {
		t.Fatalf("a publish made %d requests; the test would check little: %v", whole.n, whole.requests)
	}
	// The runs are independent (their own prefix, GitHub and registry):
	// eight at a time, as most of a run is waiting on the servers.
	var g errgroup.Group
	g.SetLimit(8)
	var mu sync.Mutex
	for n := 1; n <= whole.n; n++ {
		g.Go(func() error {
			r, c := publish(n, n)
			_, err := os.Stat(filepath.Join(srv.Root, "releases", fmt.Sprintf("run%d", n), "latest.json"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case c.cutWhat == "":
				t.Errorf("run %d: no response cut (%d responses)", n, c.n)
			case r.code != 0:
				t.Errorf("response %d (%s) cut: exit %d\n%s", n, c.cutWhat, r.code, r.stderr)
			case err != nil:
				t.Errorf("response %d (%s) cut: no latest.json: %v", n, c.cutWhat, err)
			}
			return nil
		})
	}
	g.Wait()
	t.Logf("%d positions cut, each in its own publish: %s", whole.n, strings.Join(whole.requests, "; "))
}
