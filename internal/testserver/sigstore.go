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
	// Repository and Ref are the job that asks for a token: the repository
	// whose workflow runs (OWNER/REPO) and its ref. Identity is the
	// workflow that signs, which for a reusable workflow is another
	// repository's.
	Repository, Ref string

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	vs     *ca.VirtualSigstore
	mu     sync.Mutex
	index  int64
	Certs  int // certificates issued
	// EchoToken makes Fulcio refuse every request, quoting the token.
	EchoToken bool
}

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
	s := &Sigstore{Identity: identity, Issuer: issuer, RequestToken: "actions-request-token-secret", caCert: cert, caKey: key, vs: vs,
		Repository: "runpod-workers/flash", Ref: "refs/tags/v1.2.0"}
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
	// The claims of a GitHub Actions token, as Fulcio reads them.
	jobWorkflow := strings.TrimPrefix(s.Identity, s.serverURL()+"/")
	claims, _ := json.Marshal(map[string]any{
		"iss": s.Issuer, "aud": "sigstore", "exp": time.Now().Add(time.Hour).Unix(),
		"sub": "repo:" + s.Repository + ":ref:" + s.Ref, "repository": s.Repository, "ref": s.Ref,
		"repository_owner": strings.Split(s.Repository, "/")[0], "repository_id": "1001", "repository_owner_id": "2002",
		"sha": "0123456789abcdef0123456789abcdef01234567", "event_name": "push", "runner_environment": "github-hosted",
		"repository_visibility": "public", "run_id": "42", "run_attempt": "1", "workflow": "release",
		"workflow_ref": s.Repository + "/.github/workflows/release.yml@" + s.Ref, "workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"job_workflow_ref": jobWorkflow, "job_workflow_sha": "89abcdef0123456789abcdef0123456789abcdef",
	})
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
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]string
	json.Unmarshal(raw, &c) // numbers (exp) are left out; Fulcio's extensions are strings
	sig, _ := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	digest := crypto.SHA256.New()
	digest.Write([]byte(c["sub"]))
	if ek, ok := pub.(*ecdsa.PublicKey); !ok || !ecdsa.VerifyASN1(ek, digest.Sum(nil), sig) {
		http.Error(w, "proof of possession failed", http.StatusBadRequest)
		return
	}
	san, exts, err := s.githubExtensions(c)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.Certs++
	serial := big.NewInt(int64(100 + s.Certs))
	s.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:            []*url.URL{san},
		ExtraExtensions: exts,
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

func (s *Sigstore) serverURL() string {
	u, _ := url.Parse(s.Identity)
	return u.Scheme + "://" + u.Host
}

// githubExtensions maps a GitHub Actions token's claims to the
// certificate's SAN and extensions, as Fulcio's GitHub issuer does: the SAN
// is the workflow that runs (job_workflow_ref, the called workflow for a
// reusable one), the source repository is the caller's.
func (s *Sigstore) githubExtensions(c map[string]string) (*url.URL, []pkix.Extension, error) {
	if c["job_workflow_ref"] == "" || c["repository"] == "" {
		return nil, nil, fmt.Errorf("the token has no job_workflow_ref or repository claim")
	}
	server := s.serverURL()
	san, err := url.Parse(server + "/" + c["job_workflow_ref"])
	if err != nil {
		return nil, nil, err
	}
	repoURL := server + "/" + c["repository"]
	values := []struct {
		oid   int
		value string
	}{
		{8, s.Issuer},
		{9, san.String()},                          // Build Signer URI
		{10, c["job_workflow_sha"]},                // Build Signer Digest
		{11, c["runner_environment"]},              // Runner Environment
		{12, repoURL},                              // Source Repository URI
		{13, c["sha"]},                             // Source Repository Digest
		{14, c["ref"]},                             // Source Repository Ref
		{15, c["repository_id"]},                   // Source Repository Identifier
		{16, server + "/" + c["repository_owner"]}, // Source Repository Owner URI
		{17, c["repository_owner_id"]},             // Source Repository Owner Identifier
		{18, server + "/" + c["workflow_ref"]},     // Build Config URI
		{19, c["workflow_sha"]},                    // Build Config Digest
		{20, c["event_name"]},                      // Build Trigger
		{21, repoURL + "/actions/runs/" + c["run_id"] + "/attempts/" + c["run_attempt"]}, // Run Invocation URI
		{22, c["repository_visibility"]},                                                 // Source Repository Visibility At Signing
	}
	exts := make([]pkix.Extension, 0, len(values)+5)
	// The deprecated GitHub extensions, still written, as raw strings.
	for oid, v := range map[int]string{2: c["event_name"], 3: c["sha"], 4: c["workflow"], 5: c["repository"], 6: c["ref"]} {
		exts = append(exts, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, oid}, Value: []byte(v)})
	}
	for _, v := range values {
		der, err := asn1.MarshalWithParams(v.value, "utf8")
		if err != nil {
			return nil, nil, err
		}
		exts = append(exts, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, v.oid}, Value: der})
	}
	return san, exts, nil
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
