// Package sign makes and checks Sigstore bundles (v0.3) for release files,
// hashing every file as a stream so a multi-GiB tarball is never held in
// memory (docs/publish.md).
package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"

	// sigstore's in-memory KMS: lets the KMS code path be tested offline.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/fake"
)

// PasswordEnv is where the password of an encrypted cosign key is read from,
// as cosign itself does.
const PasswordEnv = "COSIGN_PASSWORD"

// LoadKey resolves a key reference:
//
//	path/to/cosign.key   a PEM private key (PKCS#8, SEC 1, PKCS#1), or cosign's
//	                     encrypted key with its password in $COSIGN_PASSWORD
//	env://NAME           the same PEM, held in the environment variable NAME
//	scheme://…           a KMS key through sigstore's providers (fakekms://)
func LoadKey(ctx context.Context, ref string) (signature.SignerVerifier, error) {
	if name, ok := strings.CutPrefix(ref, "env://"); ok {
		pemData := os.Getenv(name)
		if pemData == "" {
			return nil, fmt.Errorf("loading key %s: the environment variable %s is empty", ref, name)
		}
		sv, err := loadPEM([]byte(pemData))
		if err != nil {
			return nil, fmt.Errorf("loading key %s: %w", ref, err)
		}
		return sv, nil
	}
	if strings.Contains(ref, "://") {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			// The provider's message may repeat the reference, query and all.
			msg := strings.ReplaceAll(err.Error(), ref, redactURI(ref))
			return nil, fmt.Errorf("loading KMS key %s: %s (supported: %s)", redactURI(ref), msg, strings.Join(kms.SupportedProviders(), ", "))
		}
		return sv, nil
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("loading key: %w", err)
	}
	sv, err := loadPEM(data)
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", ref, err)
	}
	return sv, nil
}

func loadPEM(data []byte) (signature.SignerVerifier, error) {
	password := func(bool) ([]byte, error) {
		p, ok := os.LookupEnv(PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("the key is encrypted: set %s", PasswordEnv)
		}
		return []byte(p), nil
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, password)
	if err != nil {
		// The password never reaches the message; cryptoutils' errors say
		// "decrypt failed" without echoing it.
		return nil, err
	}
	if _, ok := priv.(interface{ Public() crypto.PublicKey }); !ok {
		return nil, errors.New("not a private key")
	}
	return signature.LoadDefaultSignerVerifier(priv)
}

// Ephemeral makes a throw-away ECDSA P-256 key, for snapshots.
func Ephemeral() (signature.SignerVerifier, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
}

// redactURI drops anything after "?" or "@" that could carry credentials.
func redactURI(ref string) string {
	if i := strings.IndexAny(ref, "?@"); i >= 0 {
		return ref[:i] + "…"
	}
	return ref
}
