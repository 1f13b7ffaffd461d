package testserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/types"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // the entry kind message signatures use
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Sigstore is an offline stand-in for GitHub Actions' OIDC token endpoint,
// Fulcio and Rekor. Fulcio issues a real certificate (from a test CA) for
// the public key it is sent, naming the identity and issuer; Rekor answers
// with an entry signed (SET) and proven (inclusion proof, signed
// checkpoint) by sigstore-go's virtual log. TrustedRoot writes the
// trusted_root.json that verifies both.
type Sigstore struct {
	OIDC, Fulcio, Rekor *httptest.Server
	Identity, Issuer    string
	RequestToken        string // ACTIONS_ID_TOKEN_REQUEST_TOKEN

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	vs     *ca.VirtualSigstore
	mu     sync.Mutex
	index  int64
	Certs  int // certificates issued
	// EchoToken makes Fulcio refuse every request, quoting the token.
	EchoToken bool
}

var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// StartSigstore starts the three servers on 127.0.0.1.
func StartSigstore(t testing.TB, identity, issuer string) *Sigstore {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fwrelease test Fulcio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	s := &Sigstore{Identity: identity, Issuer: issuer, RequestToken: "actions-request-token-secret", caCert: cert, caKey: key, vs: vs}
	s.OIDC = httptest.NewServer(http.HandlerFunc(s.oidc))
	s.Fulcio = httptest.NewServer(http.HandlerFunc(s.fulcio))
	s.Rekor = httptest.NewServer(http.HandlerFunc(s.rekor))
	t.Cleanup(func() { s.OIDC.Close(); s.Fulcio.Close(); s.Rekor.Close() })
	return s
}

// Env is what a GitHub Actions job with `id-token: write` has.
func (s *Sigstore) Env() []string {
	return []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + s.OIDC.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + s.RequestToken}
}

func (s *Sigstore) oidc(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "bearer "+s.RequestToken || r.URL.Query().Get("audience") != "sigstore" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	claims, _ := json.Marshal(map[string]any{"iss": s.Issuer, "sub": "repo:runpod-workers/flash:ref:refs/tags/v1.2.0", "aud": "sigstore", "exp": time.Now().Add(time.Hour).Unix()})
	token := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2lnbmF0dXJl"
	json.NewEncoder(w).Encode(map[string]string{"value": token})
}

func (s *Sigstore) fulcio(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Credentials struct {
			OIDCIdentityToken string `json:"oidcIdentityToken"`
		} `json:"credentials"`
		PublicKeyRequest struct {
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
			ProofOfPossession string `json:"proofOfPossession"`
		} `json:"publicKeyRequest"`
	}
	if r.URL.Path != "/api/v2/signingCert" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	// The token comes as a bearer token, or in the body's credentials.
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = req.Credentials.OIDCIdentityToken
	}
	if s.EchoToken {
		http.Error(w, "invalid identity token "+token, http.StatusUnauthorized)
		return
	}
	if strings.Count(token, ".") != 2 {
		http.Error(w, "no identity token", http.StatusUnauthorized)
		return
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
	if err != nil {
		http.Error(w, "bad public key", http.StatusBadRequest)
		return
	}
	// Fulcio checks the proof of possession: a signature over the subject.
	parts := strings.Split(token, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Sub string `json:"sub"`
	}
	json.Unmarshal(claims, &c)
	sig, _ := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	digest := crypto.SHA256.New()
	digest.Write([]byte(c.Sub))
	if ek, ok := pub.(*ecdsa.PublicKey); !ok || !ecdsa.VerifyASN1(ek, digest.Sum(nil), sig) {
		http.Error(w, "proof of possession failed", http.StatusBadRequest)
		return
	}
	u, _ := url.Parse(s.Identity)
	issuerExt, _ := asn1.Marshal(s.Issuer)
	s.mu.Lock()
	s.Certs++
	serial := big.NewInt(int64(100 + s.Certs))
	s.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:            []*url.URL{u},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuerExt}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, pub, s.caKey)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	root := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.caCert.Raw}))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": []string{leaf, root}}}})
}

func (s *Sigstore) rekor(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/log/entries" || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	pe, err := models.UnmarshalProposedEntry(bytes.NewReader(body), runtime.JSONConsumer())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	impl, err := types.UnmarshalEntry(pe)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	canon, err := types.CanonicalizeEntry(context.Background(), impl)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	logID, _ := s.vs.RekorLogID()
	s.mu.Lock()
	s.index++
	s.mu.Unlock()
	integrated := time.Now().Unix()
	encoded := base64.StdEncoding.EncodeToString(canon)
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{Body: encoded, IntegratedTime: integrated, LogIndex: 0, LogID: logID})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	proof, err := s.vs.GetInclusionProof(canon)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	zero := int64(0)
	uuid := fmt.Sprintf("%064x", s.index)
	entry := models.LogEntry{uuid: models.LogEntryAnon{
		Body: encoded, IntegratedTime: &integrated, LogID: &logID, LogIndex: &zero,
		Verification: &models.LogEntryAnonVerification{SignedEntryTimestamp: set, InclusionProof: proof},
	}}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", uuid)
	w.Header().Set("Location", "/api/v1/log/entries/"+uuid)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(entry)
}

// TrustedRoot writes a trusted_root.json with the test Fulcio CA and the
// virtual Rekor log, and returns its path.
func (s *Sigstore) TrustedRoot(t testing.TB) string {
	fulcio := &root.FulcioCertificateAuthority{Root: s.caCert, ValidityPeriodStart: s.caCert.NotBefore, ValidityPeriodEnd: s.caCert.NotAfter, URI: s.Fulcio.URL}
	// The virtual log's ID is its hex string; in a trusted root the key ID
	// is the raw hash.
	logs := map[string]*root.TransparencyLog{}
	for id, tl := range s.vs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		tl.ID = raw
		logs[id] = tl
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, nil, nil, logs)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
