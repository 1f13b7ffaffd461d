package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/runpod-workers/fwrelease/internal/redact"
)

// Public-good Sigstore, the default for keyless signing.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

// KeylessOptions say where the certificate and the log entry come from.
type KeylessOptions struct {
	FulcioURL string
	RekorURL  string
	IDToken   string       // empty: SIGSTORE_ID_TOKEN, else GitHub Actions' OIDC token
	HTTP      *http.Client // for the OIDC token request
}

// NewKeyless signs with a throw-away key certified by Fulcio for the CI's
// OIDC identity; every signature is logged in Rekor and its entry (with an
// inclusion proof) goes into the bundle.
func NewKeyless(ctx context.Context, o KeylessOptions) (*Signer, error) {
	sv, err := Ephemeral()
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, sv)
	if err != nil {
		return nil, err
	}
	token := o.IDToken
	if token == "" {
		if token, err = IDToken(ctx, o.HTTP); err != nil {
			return nil, err
		}
	}
	redact.Add(token) // Fulcio may quote it back in an error
	if o.FulcioURL == "" {
		o.FulcioURL = DefaultFulcioURL
	}
	if o.RekorURL == "" {
		o.RekorURL = DefaultRekorURL
	}
	s.opts.CertificateProvider = sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: o.FulcioURL, Timeout: 30 * time.Second, Retries: 3})
	s.opts.CertificateProviderOptions = &sgsign.CertificateProviderOptions{IDToken: token}
	s.opts.TransparencyLogs = []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: o.RekorURL, Timeout: 30 * time.Second, Retries: 3})}
	s.keyless = true
	return s, nil
}

// Keyless reports whether the signer uses Fulcio certificates.
func (s *Signer) Keyless() bool { return s.keyless }

// IDToken finds an OIDC token for Sigstore: $SIGSTORE_ID_TOKEN, or one
// requested from GitHub Actions (which needs `permissions: id-token:
// write`). The token is a secret: it never appears in an error.
func IDToken(ctx context.Context, client *http.Client) (string, error) {
	if t := os.Getenv("SIGSTORE_ID_TOKEN"); t != "" {
		return t, nil
	}
	reqURL, bearer := os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if reqURL == "" || bearer == "" {
		return "", errors.New("keyless signing needs an OIDC token: in GitHub Actions grant the job `permissions: id-token: write`; elsewhere set SIGSTORE_ID_TOKEN")
	}
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", errors.New("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")
	}
	q := u.Query()
	q.Set("audience", "sigstore")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("requesting the OIDC token from %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("requesting the OIDC token from %s: %s", u.Host, resp.Status)
	}
	var body struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || body.Value == "" {
		return "", fmt.Errorf("requesting the OIDC token from %s: no token in the response", u.Host)
	}
	return body.Value, nil
}
