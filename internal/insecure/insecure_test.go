package insecure

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://s3.example.com", false, true},
		{"http://127.0.0.1:7070", false, false},
		{"http://127.0.0.1:7070", true, true},
		{"http://localhost:5000/x", true, true},
		{"http://[::1]:9000", true, true},
		{"http://10.0.0.5:7070", true, false},
		{"http://s3.example.com", true, false},
		{"ftp://127.0.0.1/x", true, false},
	}
	for _, tt := range tests {
		if err := Check(tt.url, tt.allow); (err == nil) != tt.ok {
			t.Errorf("Check(%q, %v) = %v, want ok=%v", tt.url, tt.allow, err, tt.ok)
		}
	}
}

func TestRegistryScheme(t *testing.T) {
	tests := []struct {
		registry         string
		plainHTTP, allow bool
		want             string // "" is an error
	}{
		{"10.1.2.3:5000", false, false, "https"}, // go-containerregistry alone would also try http
		{"192.168.1.10", false, true, "https"},
		{"10.1.2.3:5000", true, true, ""},
		{"registry.local:5000", true, true, ""},
		{"127.0.0.1:5000", false, true, "https"},
		{"127.0.0.1:5000", true, false, ""},
		{"127.0.0.1:5000", true, true, "http"},
		{"localhost:5000", true, true, "http"},
		{"[::1]:5000", true, true, "http"},
		{"ghcr.io", false, false, "https"},
	}
	for _, tt := range tests {
		got, err := RegistryScheme(tt.registry, tt.plainHTTP, tt.allow)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("RegistryScheme(%q, plain_http=%v, --allow-insecure=%v) = %q, %v; want %q", tt.registry, tt.plainHTTP, tt.allow, got, err, tt.want)
		}
	}
}

// recorder stands in for the network: it records each request and
// answers none, so no address is contacted.
type recorder struct{ urls []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	return nil, errors.New("not contacted")
}

// go-containerregistry on its own pings a private-range registry over
// both https and http; through Transport only https leaves.
func TestTransportKeepsPrivateRangeOnHTTPS(t *testing.T) {
	scheme, err := RegistryScheme("10.1.2.3:5000", false, false)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("10.1.2.3:5000/runpod/flash-worker:1.2.0")
	if ref.Context().Scheme() != "http" {
		t.Fatalf("go-containerregistry now chooses %s for a private-range address; this test shows nothing", ref.Context().Scheme())
	}
	rec := &recorder{}
	remote.Head(ref, remote.WithTransport(Transport(rec, scheme)), remote.WithAuth(&authn.Basic{Username: "ci", Password: "pw"}))
	if len(rec.urls) == 0 {
		t.Fatal("no request reached the transport")
	}
	for _, u := range rec.urls {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("a request went out as %s", u)
		}
	}
}

func TestTransportRefusesCredentialsOverHTTP(t *testing.T) {
	rec := &recorder{}
	tr := Transport(rec, "http")
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000/v2/", nil)
	if _, err := tr.RoundTrip(req); err == nil || err.Error() != "not contacted" {
		t.Errorf("anonymous plain http to loopback: %v, want it passed on", err)
	}
	req.Header.Set("Authorization", "Basic Y2k6cHc=")
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing to send credentials over plain http to 127.0.0.1:5000") {
		t.Errorf("credentials over plain http: %v", err)
	}
	if len(rec.urls) != 1 {
		t.Errorf("%d requests passed, want 1", len(rec.urls))
	}
}
