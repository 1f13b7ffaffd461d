package sign

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrVerify marks a signature that does not check out, as opposed to a
// file that could not be read.
var ErrVerify = errors.New("signature verification failed")

// Verifier checks bundles against one trust policy: a public key, or a
// certificate identity and issuer under a trusted root.
type Verifier struct {
	v      *verify.Verifier
	policy verify.PolicyOption
}

// NewKeyVerifier trusts bundles signed by the key in pubPEM.
func NewKeyVerifier(pubPEM []byte) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	v, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, policy: verify.WithKey()}, nil
}

// NewIdentityVerifier trusts bundles whose Fulcio certificate names identity
// (the SAN, e.g. a workflow URL) and issuer, logged in a transparency log of
// the trusted root.
func NewIdentityVerifier(trusted root.TrustedMaterial, identity, issuer string) (*Verifier, error) {
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(trusted, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, policy: verify.WithCertificateIdentity(id)}, nil
}

// VerifyFile checks bundlePath against path, hashing path as a stream.
func (v *Verifier) VerifyFile(ctx context.Context, path, bundlePath string) error {
	b, err := bundle.LoadJSONFromPath(bundlePath)
	if err != nil {
		return fmt.Errorf("reading bundle %s: %w", bundlePath, err)
	}
	alg, hf, err := digestAlgorithm(b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrVerify, bundlePath, err)
	}
	digest, err := hashFile(path, hf)
	if err != nil {
		return fmt.Errorf("hashing %s: %w", path, err)
	}
	if err := v.VerifyDigest(b, alg, digest); err != nil {
		return fmt.Errorf("%s with %s: %w", path, bundlePath, err)
	}
	return nil
}

// VerifyDigest checks a bundle against an artifact's digest.
func (v *Verifier) VerifyDigest(b *bundle.Bundle, alg string, digest []byte) error {
	if _, err := v.v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest(alg, digest), v.policy)); err != nil {
		return fmt.Errorf("%w: %v", ErrVerify, err)
	}
	return nil
}

// digestAlgorithm reads which hash the bundle's signature covers.
func digestAlgorithm(b *bundle.Bundle) (string, crypto.Hash, error) {
	ms := b.GetMessageSignature()
	if ms == nil || ms.GetMessageDigest() == nil {
		return "", 0, errors.New("the bundle holds no message signature (a DSSE attestation is not a signature of the file)")
	}
	switch ms.GetMessageDigest().GetAlgorithm() {
	case protocommon.HashAlgorithm_SHA2_256:
		return "sha256", crypto.SHA256, nil
	case protocommon.HashAlgorithm_SHA2_384:
		return "sha384", crypto.SHA384, nil
	case protocommon.HashAlgorithm_SHA2_512:
		return "sha512", crypto.SHA512, nil
	}
	return "", 0, fmt.Errorf("unsupported digest algorithm %s", ms.GetMessageDigest().GetAlgorithm())
}

// ParseBundle decodes a bundle's JSON.
func ParseBundle(data []byte) (*bundle.Bundle, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("decoding bundle: %w", err)
	}
	return &b, nil
}

// DigestMatcher accepts a bundle whose message signature covers the given
// digest, without checking who signed it. A keyless re-run uses it to keep
// a signature it published before: trust is `fwrelease verify`'s job, with
// the identity the consumer expects.
type DigestMatcher struct{}

func (DigestMatcher) VerifyDigest(b *bundle.Bundle, _ string, digest []byte) error {
	ms := b.GetMessageSignature()
	if ms == nil || !bytes.Equal(ms.GetMessageDigest().GetDigest(), digest) {
		return fmt.Errorf("%w: the bundle signs another digest", ErrVerify)
	}
	return nil
}
