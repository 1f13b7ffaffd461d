package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

// releaseServer serves a release's files over https on 127.0.0.1, and can
// be told to misbehave. Every httptest TLS server uses the same certificate,
// so one CA file (httpsRel.caFile) makes all of them trusted.
type releaseServer struct {
	*httptest.Server
	root      string
	mode      atomic.Value // "", "corrupt", "truncate", "missing", "swap"
	swapWith  string       // "swap": the file served for every tarball instead
	downloads atomic.Int32 // tarball requests
	plain     *httptest.Server
	plainHits atomic.Int32
}

func newReleaseServer(t *testing.T, root string) *releaseServer {
	s := startReleaseServer(root)
	t.Cleanup(s.Close)
	t.Cleanup(s.plain.Close)
	return s
}

func startReleaseServer(root string) *releaseServer {
	s := &releaseServer{root: root}
	s.mode.Store("")
	s.plain = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.plainHits.Add(1)
		s.serve(w, r, r.URL.Path)
	}))
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/hop/"): // as GitHub sends release downloads elsewhere
			http.Redirect(w, r, s.URL+strings.TrimPrefix(p, "/hop"), http.StatusFound)
		case strings.HasPrefix(p, "/downgrade/"):
			http.Redirect(w, r, s.plain.URL+strings.TrimPrefix(p, "/downgrade"), http.StatusFound)
		default:
			s.serve(w, r, p)
		}
	}))
	return s
}

func (s *releaseServer) serve(w http.ResponseWriter, r *http.Request, path string) {
	name := filepath.Join(s.root, filepath.FromSlash(path))
	tarball := strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tar.zst")
	if tarball {
		s.downloads.Add(1)
	}
	mode := s.mode.Load().(string)
	if !tarball {
		mode = ""
	}
	if mode == "swap" {
		name = s.swapWith
	}
	data, err := os.ReadFile(name)
	if err != nil || mode == "missing" {
		http.NotFound(w, r)
		return
	}
	switch mode {
	case "corrupt":
		data[len(data)/2] ^= 0xff
	case "truncate":
		// Promise the whole file, send half, then drop the connection.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
			}
		}
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// httpsRel is a signed release whose URLs are https on 127.0.0.1: the
// example's snapshot, re-pointed at a server and re-signed with a key of
// the test's own, as a release published to a mirror would be.
type httpsRel struct {
	dir      string // the released files, served at the server's root
	manifest string // its manifest.json, signed
	pub      string // the public key it is signed with
	caFile   string // trusts every httptest TLS server
	server   *releaseServer
	m        *manifest.Manifest
}

// env lets curl, wget, python3 and fwrelease trust the test server.
func (h *httpsRel) env() []string {
	rc := filepath.Join(filepath.Dir(h.caFile), "wgetrc")
	return []string{"SSL_CERT_FILE=" + h.caFile, "CURL_CA_BUNDLE=" + h.caFile, "WGETRC=" + rc}
}

var (
	httpsOnce sync.Once
	httpsRes  *httpsRel
	httpsErr  string
)

func httpsRelease(t *testing.T) *httpsRel {
	t.Helper()
	skipShort(t)
	httpsOnce.Do(func() {
		// Shared by the tests of the start script and pin; it lives as long
		// as the test binary, beside it, and goes when TestMain cleans up.
		base := filepath.Join(filepath.Dir(bin), "https-release")
		httpsRes, httpsErr = makeHTTPSRelease(t, base)
	})
	if httpsRes == nil {
		t.Fatalf("making the https release: %s", httpsErr)
	}
	return httpsRes
}

func makeHTTPSRelease(t *testing.T, base string) (*httpsRel, string) {
	// A copy of the shared snapshot: its URLs are re-pointed and its
	// files signed again below.
	shared := sharedSnapshot(t)
	os.MkdirAll(base, 0o755)
	copyDir(t, shared.dist, filepath.Join(base, "dist"))
	s := snapshot{dist: filepath.Join(base, "dist")}
	h := &httpsRel{dir: s.dist, manifest: filepath.Join(s.dist, "manifest.json")}
	h.server = startReleaseServer(s.dist) // lives as long as the test binary
	cert := h.server.Certificate()
	h.caFile = filepath.Join(base, "ca.pem")
	os.WriteFile(h.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
	os.WriteFile(filepath.Join(base, "wgetrc"), []byte("ca_certificate = "+h.caFile+"\n"), 0o644)

	// Re-point every URL at the server: the snapshot's dist/ holds each
	// tarball and bundle at its top. Edited as JSON, so fields this test
	// does not know about stay as they are.
	data, err := os.ReadFile(h.manifest)
	if err != nil {
		return nil, err.Error()
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err.Error()
	}
	for _, a := range raw["artifacts"].([]any) {
		a := a.(map[string]any)
		file := a["file"].(string)
		a["urls"] = []string{h.server.URL + "/" + file}
		if _, ok := a["channels"]; ok {
			a["channels"] = map[string]string{"s3": h.server.URL + "/" + file}
		}
		a["signature"].(map[string]any)["urls"] = []string{h.server.URL + "/" + file + sign.BundleSuffix}
		// The layer files, from the snapshot's local channel.
		for _, l := range a["layers"].([]any) {
			l := l.(map[string]any)
			u := l["urls"].([]any)[0].(string)
			l["urls"] = []string{h.server.URL + "/local/v1.2.0/" + u[strings.LastIndex(u, "/")+1:]}
		}
		// Signed with the snapshot's key, which is not the one this
		// release is signed with below: the https release is the
		// tarballs' channel.
		delete(a, "oci")
		delete(a, "images")
	}
	data, _ = json.MarshalIndent(raw, "", "  ")
	if err := os.WriteFile(h.manifest, append(data, '\n'), 0o644); err != nil {
		return nil, err.Error()
	}
	if h.m, err = manifest.Decode(data); err != nil {
		return nil, err.Error()
	}

	// Sign everything again with a key of our own.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(base, "release.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	h.pub = filepath.Join(base, "release.pub")
	os.WriteFile(h.pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	ctx := context.Background()
	sv, err := sign.LoadKey(ctx, keyFile)
	if err != nil {
		return nil, err.Error()
	}
	signer, err := sign.New(ctx, sv)
	if err != nil {
		return nil, err.Error()
	}
	for _, a := range h.m.Artifacts {
		if _, err := signer.SignFile(ctx, filepath.Join(s.dist, a.File)); err != nil {
			return nil, err.Error()
		}
	}
	if _, err := signer.SignFile(ctx, h.manifest); err != nil {
		return nil, err.Error()
	}
	return h, ""
}
