// Package insecure is the one place that decides what --allow-insecure
// permits: plain HTTP to loopback addresses (tests, local mirrors), never
// with credentials to a registry, and nothing else.
package insecure

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
)

// Check allows an https URL anywhere, and an http one only to a loopback
// host when allowInsecure is set.
func Check(rawURL string, allowInsecure bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !allowInsecure {
			return fmt.Errorf("%s is plain http; pass --allow-insecure (loopback only) or use https", rawURL)
		}
		if !IsLoopback(u.Hostname()) {
			return fmt.Errorf("%s is plain http to a non-loopback host; --allow-insecure permits loopback only", rawURL)
		}
		return nil
	}
	return fmt.Errorf("%s: want an https:// URL", rawURL)
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RegistryScheme is how an OCI registry ("host[:port]") is reached: plain
// http only when the config asks for it (plainHTTP), --allow-insecure is
// given and the host is loopback; https otherwise, whatever the address
// looks like.
func RegistryScheme(registry string, plainHTTP, allowInsecure bool) (string, error) {
	if !plainHTTP {
		return "https", nil
	}
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if !allowInsecure || !IsLoopback(host) {
		return "", fmt.Errorf("plain http to %s needs --allow-insecure and a loopback registry", registry)
	}
	return "http", nil
}

// Transport enforces the scheme RegistryScheme chose, below
// go-containerregistry, which falls back to plain http on its own for
// loopback, private-range and .local addresses: a plain-http request is
// refused unless scheme is "http" and the host loopback, and one carrying
// credentials is refused always.
func Transport(next http.RoundTripper, scheme string) http.RoundTripper {
	return transport{next: next, allowHTTP: scheme == "http"}
}

type transport struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		switch {
		case !t.allowHTTP || !IsLoopback(r.URL.Hostname()):
			return nil, fmt.Errorf("refusing plain http to %s: registries are reached over https", r.URL.Host)
		case r.Header.Get("Authorization") != "":
			return nil, fmt.Errorf("refusing to send credentials over plain http to %s", r.URL.Host)
		}
	}
	return t.next.RoundTrip(r)
}

// CheckRedirect is an http.Client redirect policy that follows a redirect
// only to where Check would have let the first request go, so an https
// download is never downgraded to plain http by a redirect.
func CheckRedirect(allowInsecure bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after 10 redirects at %s", req.URL.Redacted())
		}
		if err := Check(req.URL.String(), allowInsecure); err != nil {
			return fmt.Errorf("refusing the redirect from %s: %w", via[len(via)-1].URL.Redacted(), err)
		}
		return nil
	}
}
