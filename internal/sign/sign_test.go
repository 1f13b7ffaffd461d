package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"
)

func signAndVerify(t *testing.T, s *Signer) (file, bundlePath string, v *Verifier) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	file = filepath.Join(dir, "flash-worker.tar.gz")
	if err := os.WriteFile(file, []byte(strings.Repeat("tarball bytes ", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath, err := s.SignFile(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if bundlePath != file+".sigstore.json" {
		t.Errorf("bundle written to %s", bundlePath)
	}
	pub, err := s.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	v, err = NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyFile(ctx, file, bundlePath); err != nil {
		t.Fatalf("a fresh signature does not verify: %v", err)
	}
	data, _ := os.ReadFile(bundlePath)
	if !strings.Contains(string(data), `"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"`) &&
		!strings.Contains(string(data), `"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"`) {
		t.Errorf("bundle is not v0.3: %s", data)
	}
	return file, bundlePath, v
}

func TestSignAndVerifyEachKeySource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.SkipPassword)
	_ = pub
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "plain.key"), priv, 0o600)
	encPriv, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("hunter2")))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cosign.key"), encPriv, 0o600)
	rsaPriv, _, err := cryptoutils.GeneratePEMEncodedRSAKeyPair(2048, cryptoutils.SkipPassword)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rsa.key"), rsaPriv, 0o600)

	t.Setenv(PasswordEnv, "hunter2")
	t.Setenv("FW_SIGNING_KEY", string(priv))
	for _, ref := range []string{filepath.Join(dir, "plain.key"), filepath.Join(dir, "cosign.key"), filepath.Join(dir, "rsa.key"), "env://FW_SIGNING_KEY", "fakekms://release-key"} {
		t.Run(filepath.Base(ref), func(t *testing.T) {
			sv, err := LoadKey(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(ctx, sv)
			if err != nil {
				t.Fatal(err)
			}
			signAndVerify(t, s)
		})
	}
}

func TestLoadKeyErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	encPriv, _, _ := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("hunter2")))
	os.WriteFile(filepath.Join(dir, "cosign.key"), encPriv, 0o600)
	os.WriteFile(filepath.Join(dir, "junk.key"), []byte("not a key"), 0o600)

	t.Setenv(PasswordEnv, "wrong-password-s3cret")
	_, err := LoadKey(ctx, filepath.Join(dir, "cosign.key"))
	if err == nil || !strings.Contains(err.Error(), "cosign.key") || strings.Contains(err.Error(), "wrong-password-s3cret") {
		t.Errorf("wrong password: %v (must name the key and never echo the password)", err)
	}
	os.Unsetenv(PasswordEnv)
	if _, err := LoadKey(ctx, filepath.Join(dir, "cosign.key")); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("no password: %v", err)
	}
	if _, err := LoadKey(ctx, filepath.Join(dir, "junk.key")); err == nil || !strings.Contains(err.Error(), "junk.key") {
		t.Errorf("junk key: %v", err)
	}
	if _, err := LoadKey(ctx, filepath.Join(dir, "missing.key")); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := LoadKey(ctx, "env://FW_NO_SUCH_VAR"); err == nil || !strings.Contains(err.Error(), "FW_NO_SUCH_VAR is empty") {
		t.Errorf("empty env: %v", err)
	}
	if _, err := LoadKey(ctx, "nokms://key?token=s3cret"); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "fakekms://") {
		t.Errorf("unknown KMS: %v (must list providers and hide the query)", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	sv, _ := Ephemeral()
	s, _ := New(ctx, sv)

	t.Run("tampered file", func(t *testing.T) {
		file, b, v := signAndVerify(t, s)
		os.WriteFile(file, []byte("evil"), 0o644)
		if err := v.VerifyFile(ctx, file, b); !errors.Is(err, ErrVerify) {
			t.Errorf("tampered file verified: %v", err)
		}
	})
	t.Run("tampered bundle", func(t *testing.T) {
		file, b, v := signAndVerify(t, s)
		data, _ := os.ReadFile(b)
		// Flip one character of the base64 signature.
		i := strings.Index(string(data), `"signature":"`) + len(`"signature":"`) + 5
		if i < 20 {
			t.Fatalf("no signature in %s", data)
		}
		c := byte('A')
		if data[i] == 'A' {
			c = 'B'
		}
		data[i] = c
		os.WriteFile(b, data, 0o644)
		if err := v.VerifyFile(ctx, file, b); err == nil {
			t.Error("tampered bundle verified")
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		file, b, _ := signAndVerify(t, s)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := cryptoutils.MarshalPublicKeyToPEM(other.Public())
		v, _ := NewKeyVerifier(pub)
		if err := v.VerifyFile(ctx, file, b); !errors.Is(err, ErrVerify) {
			t.Errorf("verified with the wrong key: %v", err)
		}
	})
}

func TestRefusesEd25519(t *testing.T) {
	ctx := context.WithValue(context.Background(), fake.KmsCtxKey{}, mustEd25519(t))
	sv, err := LoadKey(ctx, "fakekms://ed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, sv); err == nil || !strings.Contains(err.Error(), "use an ECDSA P-256 or RSA key") {
		t.Errorf("ed25519: %v", err)
	}
}

func mustEd25519(t *testing.T) any {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
