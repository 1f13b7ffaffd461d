// Package redact removes secrets from text that may carry a server's
// words: an API error that quotes the request's Authorization header, a
// certificate authority that echoes the OIDC token it was sent. The CLI
// passes every error and log line through it on the way out.
package redact

import (
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Mask replaces whatever is removed.
const Mask = "[REDACTED]"

// secretEnv are the variables whose values are secrets wherever they
// appear: tokens, AWS keys, key passwords, OIDC tokens.
var secretEnv = []string{
	"GITHUB_TOKEN", "GH_TOKEN",
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"COSIGN_PASSWORD",
	"SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_RUNTIME_TOKEN",
}

// minSecret is the shortest value treated as a secret: replacing "1" or
// "x" everywhere would garble the output and protect nothing.
const minSecret = 6

var (
	mu    sync.RWMutex
	known = map[string]bool{}
)

// Add makes s a secret from now on (an OIDC token once fetched, a password
// read from a file).
func Add(s string) {
	if len(s) < minSecret {
		return
	}
	mu.Lock()
	known[s] = true
	mu.Unlock()
}

// Patterns that are secrets whatever their value: credentials after an
// Authorization header or scheme, JWTs (OIDC tokens), GitHub tokens, a
// URL's user:password, presigned-URL signatures and AWS key IDs.
var patterns = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)((?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token|aws4-hmac-sha256)\s+)?[^\s"',;)]+`), "${1}" + Mask},
	{regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`), Mask},
	{regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})`), Mask},
	{regexp.MustCompile(`(://)[^/\s:@]+:[^/\s@]+@`), "${1}" + Mask + "@"},
	// A presigned URL's signature and session token, and AWS access key
	// IDs, which S3 quotes back in its errors.
	{regexp.MustCompile(`(?i)\b(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s"':]+`), "${1}" + Mask},
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`), Mask},
}

// String returns s with every known secret and every secret-shaped
// credential replaced by Mask.
func String(s string) string {
	for _, secret := range secrets() {
		s = strings.ReplaceAll(s, secret, Mask)
	}
	for _, p := range patterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return schemeCredential.ReplaceAllStringFunc(s, func(m string) string {
		sub := schemeCredential.FindStringSubmatch(m)
		if !looksLikeCredential(sub[3]) {
			return m // "basic layout", not "Basic dXNlcjpwYXNz"
		}
		return sub[1] + sub[2] + Mask
	})
}

// schemeCredential is a Bearer or Basic credential quoted without its
// header.
var schemeCredential = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)`)

func looksLikeCredential(v string) bool {
	return len(v) >= 20 || len(v) >= 8 && strings.ContainsAny(v, "0123456789+/=._~-")
}

func secrets() []string {
	var out []string
	for _, name := range secretEnv {
		if v := os.Getenv(name); len(v) >= minSecret {
			out = append(out, v)
		}
	}
	mu.RLock()
	for s := range known {
		out = append(out, s)
	}
	mu.RUnlock()
	return out
}

// Writer redacts each write to w. Callers write whole lines or messages
// (slog writes a record at a time), so a secret is never split between
// two writes.
func Writer(w io.Writer) io.Writer { return writer{w} }

type writer struct{ w io.Writer }

func (r writer) Write(p []byte) (int, error) {
	clean := String(string(p))
	if clean == string(p) {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, clean); err != nil {
		return 0, err
	}
	return len(p), nil
}
