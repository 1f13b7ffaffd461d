package publish

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// basicAuthRegistry is a loopback registry over plain http that asks for
// Basic credentials and records every request that carried any.
type basicAuthRegistry struct {
	host string
	mu   sync.Mutex
	sent []string // "METHOD URL" of requests with an Authorization header
}

func startBasicAuthRegistry(t *testing.T) *basicAuthRegistry {
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	b := &basicAuthRegistry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "credentials, please", http.StatusUnauthorized)
			return
		}
		b.mu.Lock()
		b.sent = append(b.sent, r.Method+" http://"+r.Host+r.URL.Path)
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.host = strings.TrimPrefix(srv.URL, "http://")
	// The Docker config holds a password for it, as a CI runner's would.
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:registry-password"))
	os.WriteFile(filepath.Join(dir, "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, b.host, auth), 0o600)
	t.Setenv("DOCKER_CONFIG", dir)
	return b
}

// Registry credentials never go over plain http: not when the repository
// merely looks local (go-containerregistry would fall back to http on its
// own), nor when plain_http and --allow-insecure allow http to loopback.
func TestOCICredentialsNeverOverPlainHTTP(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		plainHTTP, allowHTTP bool
		want                 string
	}{
		{"neither plain_http nor --allow-insecure", false, false, "server gave HTTP response to HTTPS client"},
		{"plain_http and --allow-insecure", true, true, "refusing to send credentials over plain http to "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := startBasicAuthRegistry(t)
			o, err := NewOCIRegistry(reg.host+"/runpod/flash-worker", tt.plainHTTP, tt.allowHTTP)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ociArtifact(t, t.TempDir(), "py3.11-cpu-linux-x86_64", "tarball bytes").push(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("push error = %v, want one saying %q", err, tt.want)
			}
			if len(reg.sent) > 0 {
				t.Errorf("credentials went over plain http with %d requests, first %s", len(reg.sent), reg.sent[0])
			}
		})
	}
}
