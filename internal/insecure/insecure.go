// Package insecure is the one place that decides what --allow-insecure
// permits: plain HTTP to loopback addresses (tests, local mirrors), and
// nothing else.
package insecure

import (
	"fmt"
	"net"
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
