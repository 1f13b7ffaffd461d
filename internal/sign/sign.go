package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/runpod-workers/fwrelease/internal/atomicfile"
)

// BundleSuffix is appended to a file's name to name its bundle.
const BundleSuffix = ".sigstore.json"

// BundleMediaType is the media type of the bundles we write.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// Signer signs files with one key.
type Signer struct {
	sv      signature.SignerVerifier
	details signature.AlgorithmDetails
	pub     crypto.PublicKey
	opts    sgsign.BundleOptions
	keyless bool
}

// New wraps a key. Keys whose signatures cannot be made over a precomputed
// digest (pure Ed25519) are refused, since we never hold the whole file.
func New(ctx context.Context, sv signature.SignerVerifier) (*Signer, error) {
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	details, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil {
		return nil, fmt.Errorf("key type: %w", err)
	}
	switch details.GetHashType() {
	case crypto.SHA256:
	case crypto.Hash(0):
		return nil, errors.New("Ed25519 keys sign whole messages, not digests; use an ECDSA P-256 or RSA key")
	default:
		// Everything downstream (manifest, verify, the start command) speaks
		// sha256; one digest per file keeps it that way.
		return nil, fmt.Errorf("%s keys sign %s digests; use an ECDSA P-256 or RSA key, which sign sha256", details.GetSignatureAlgorithm(), details.GetHashType())
	}
	return &Signer{sv: sv, details: details, pub: pub, opts: sgsign.BundleOptions{Context: ctx}}, nil
}

// PublicKeyPEM is the key to verify this signer's bundles with.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	return cryptoutils.MarshalPublicKeyToPEM(s.pub)
}

// SignFile hashes path as a stream and writes path + BundleSuffix.
func (s *Signer) SignFile(ctx context.Context, path string) (string, error) {
	digest, err := hashFile(path, s.details.GetHashType())
	if err != nil {
		return "", fmt.Errorf("signing %s: %w", path, err)
	}
	return s.writeSigned(ctx, path, digest)
}

// SignArtifact signs the file at path by its hex sha256, taken when it was
// written, without reading it, and writes path + BundleSuffix. (Every key
// New accepts signs sha256 digests.)
func (s *Signer) SignArtifact(ctx context.Context, path, sha256Hex string) (string, error) {
	digest, err := hex.DecodeString(sha256Hex)
	if err != nil || len(digest) != sha256.Size {
		return "", fmt.Errorf("signing %s: %q is not a sha256", path, sha256Hex)
	}
	return s.writeSigned(ctx, path, digest)
}

// writeSigned signs digest, path's, and writes path + BundleSuffix.
func (s *Signer) writeSigned(ctx context.Context, path string, digest []byte) (string, error) {
	b, err := s.SignDigest(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("signing %s: %w", path, err)
	}
	out := path + BundleSuffix
	if err := WriteBundle(out, b); err != nil {
		return "", err
	}
	return out, nil
}

// SignDigest makes a bundle for an artifact whose digest (with the key's
// hash function) is already known.
func (s *Signer) SignDigest(ctx context.Context, digest []byte) (*bundle.Bundle, error) {
	opts := s.opts
	opts.Context = ctx
	pb, err := sgsign.Bundle(&sgsign.PlainData{}, &digestKeypair{s: s, digest: digest}, opts)
	if err != nil {
		return nil, err
	}
	return &bundle.Bundle{Bundle: pb}, nil
}

// WriteBundle writes a bundle as JSON, atomically.
func WriteBundle(path string, b *bundle.Bundle) error {
	data, err := b.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding bundle %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func hashFile(path string, hf crypto.Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := hf.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// digestKeypair adapts a key to sigstore-go's Keypair, signing a digest
// computed beforehand instead of the (empty) data sigstore-go hands it.
type digestKeypair struct {
	s      *Signer
	digest []byte
}

var _ sgsign.Keypair = (*digestKeypair)(nil)

func (k *digestKeypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return k.s.details.GetProtoHashType()
}

func (k *digestKeypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.s.details.GetSignatureAlgorithm()
}

func (k *digestKeypair) GetHint() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.s.pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

func (k *digestKeypair) GetKeyAlgorithm() string {
	switch k.s.details.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	}
	return ""
}

func (k *digestKeypair) GetPublicKey() crypto.PublicKey { return k.s.pub }

func (k *digestKeypair) GetPublicKeyPem() (string, error) {
	p, err := k.s.PublicKeyPEM()
	return string(p), err
}

// SignData signs the precomputed digest when sigstore-go asks for the
// (empty) content, and data itself otherwise: Fulcio's proof of possession
// is a signature over the token's subject.
func (k *digestKeypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	digest := k.digest
	if len(data) > 0 {
		h := k.s.details.GetHashType().New()
		h.Write(data)
		digest = h.Sum(nil)
	}
	sig, err := k.s.sv.SignMessage(bytes.NewReader(nil),
		options.WithDigest(digest),
		options.WithCryptoSignerOpts(k.s.details.GetHashType()),
		options.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	return sig, digest, nil
}
