package sign

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
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
	v        *verify.Verifier
	policy   verify.PolicyOption
	tagsOnly bool // the source repository's ref must be a tag
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

// Identity is whom a keyless signature must come from.
type Identity struct {
	SAN, Issuer string // the certificate's subject (e.g. a workflow URL) and OIDC issuer
	// Repository is the GitHub OWNER/REPO that ran the signing workflow, as
	// Fulcio records it in the certificate (Source Repository URI). A
	// reusable workflow's SAN names the called workflow, the same for every
	// repository that calls it: only this says who released. The ref it
	// ran at must then be a tag (Source Repository Ref refs/tags/…).
	Repository string
	// AnyRepository accepts a certificate from any source repository; only
	// an explicit opt-out, for issuers that do not record one.
	AnyRepository bool
}

// NewIdentityVerifier trusts bundles whose Fulcio certificate matches id,
// logged in a transparency log of the trusted root.
func NewIdentityVerifier(trusted root.TrustedMaterial, id Identity) (*Verifier, error) {
	var ext certificate.Extensions
	switch {
	case id.Repository != "":
		uri, err := sourceRepositoryURI(id.SAN, id.Repository)
		if err != nil {
			return nil, err
		}
		ext.SourceRepositoryURI = uri
	case !id.AnyRepository:
		return nil, errors.New("keyless verification needs the repository that released (a reusable workflow's identity is the same for every caller)")
	}
	san, err := verify.NewSANMatcher(id.SAN, "")
	if err != nil {
		return nil, err
	}
	issuer, err := verify.NewIssuerMatcher(id.Issuer, "")
	if err != nil {
		return nil, err
	}
	ci, err := verify.NewCertificateIdentity(san, issuer, ext)
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(trusted, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, policy: verify.WithCertificateIdentity(ci), tagsOnly: id.Repository != ""}, nil
}

var githubRepository = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`)

// sourceRepositoryURI is what Fulcio writes for a GitHub repository: the
// server's URL (the SAN's, so GitHub Enterprise works too) and OWNER/REPO.
func sourceRepositoryURI(san, repo string) (string, error) {
	if !githubRepository.MatchString(repo) {
		return "", fmt.Errorf("repository %q is not OWNER/REPO", repo)
	}
	u, err := url.Parse(san)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("certificate identity %q is not an https URL of a GitHub workflow", san)
	}
	return "https://" + u.Host + "/" + repo, nil
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
	_, err := v.Check(b, alg, digest)
	return err
}

// Check is VerifyDigest that also says who signed: "key" for a key, the
// source repository and ref (…/OWNER/REPO@refs/tags/v1.2.0) for a
// certificate, or its SAN when the certificate names no repository.
func (v *Verifier) Check(b *bundle.Bundle, alg string, digest []byte) (string, error) {
	res, err := v.v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest(alg, digest), v.policy))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrVerify, err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return "key", nil
	}
	c := res.Signature.Certificate
	if v.tagsOnly && !strings.HasPrefix(c.SourceRepositoryRef, "refs/tags/") {
		return "", fmt.Errorf("%w: signed by %s at %q, not at a tag", ErrVerify, c.SourceRepositoryURI, c.SourceRepositoryRef)
	}
	if c.SourceRepositoryURI == "" {
		return c.SubjectAlternativeName, nil
	}
	return c.SourceRepositoryURI + "@" + c.SourceRepositoryRef, nil
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
