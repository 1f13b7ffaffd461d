package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/httpretry"
	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/redact"
)

// Media and artifact types of what the OCI channel pushes.
const (
	ArtifactTypeGzip   = "application/vnd.runpod.flash-worker.v1+tar+gzip"
	ArtifactTypeZstd   = "application/vnd.runpod.flash-worker.v1+tar+zstd"
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	emptyConfigType    = "application/vnd.oci.empty.v1+json"
	layerTypeGzip      = "application/vnd.oci.image.layer.v1.tar+gzip"
	layerTypeZstd      = "application/vnd.oci.image.layer.v1.tar+zstd"
	titleAnnotation    = "org.opencontainers.image.title"
	targetAnnotation   = "dev.runpod.flash-worker.target"
	pythonAnnotation   = "dev.runpod.flash-worker.python"
	accelAnnotation    = "dev.runpod.flash-worker.accel"
)

var emptyConfig = []byte("{}")

// OCI pushes each target as an artifact manifest tagged v{version}-{id},
// its signature as a referrer, and an index tagged v{version} over all
// targets; to a registry, or to an OCI image layout for snapshots.
type OCI struct {
	Repository string // "ghcr.io/runpod-workers/flash-worker", or the layout's directory
	Source     string // "https://github.com/owner/repo", for the source annotation
	Replace    bool
	Log        *slog.Logger
	store      ociStore
	entries    []v1.Descriptor
	pushed     map[string]v1.Descriptor // artifact key → its manifest, for its signature
	config     *v1.Descriptor           // the empty config, once written
}

var (
	_ Publisher = (*OCI)(nil)
	_ Indexer   = (*OCI)(nil)
)

// ociStore is where blobs and manifests go: a registry or a layout.
type ociStore interface {
	writeBlob(ctx context.Context, digest v1.Hash, size int64, mediaType string, c content) error
	putManifest(ctx context.Context, tag string, mediaType types.MediaType, raw []byte) error
	tagged(ctx context.Context, tag string) (v1.Hash, bool, error)
	hasReferrer(ctx context.Context, subject v1.Hash, artifactType string) (bool, error)
	writeImage(ctx context.Context, tag string, img v1.Image, raw []byte, mediaType types.MediaType) error
}

// NewOCIRegistry pushes to a registry, with credentials from the Docker
// config and credential helpers. plainHTTP is for loopback registries.
func NewOCIRegistry(repository string, plainHTTP, allowInsecure bool) (*OCI, error) {
	host, _, _ := strings.Cut(repository, "/")
	scheme, err := insecure.RegistryScheme(host, plainHTTP, allowInsecure)
	if err != nil {
		return nil, fmt.Errorf("publish.oci.plain_http for %s: %w", repository, err)
	}
	var opts []name.Option
	if scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish.oci.repository %q: %w", repository, err)
	}
	return &OCI{Repository: repo.Name(), store: &registryStore{repo: repo, transport: insecure.Transport(httpretry.Transport{Next: remote.DefaultTransport}, scheme)}}, nil
}

// NewOCILayout writes an OCI image layout in dir.
func NewOCILayout(dir string) (*OCI, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	return &OCI{Repository: dir, store: &layoutStore{path: p}}, nil
}

func (o *OCI) Name() string { return "oci" }

// Publish pushes a tarball as a tagged artifact manifest and returns its
// reference, and attaches a signature to the tarball it signs, which this
// run must have pushed. Other files (the release manifest, and so its
// signature) are not the registry's to carry.
func (o *OCI) Publish(ctx context.Context, a artifact.Artifact) (artifact.Location, error) {
	switch {
	case a.Kind == artifact.Tarball:
		ref, err := o.push(ctx, a)
		if err != nil {
			return artifact.Location{}, err
		}
		return artifact.Location{Channel: o.Name(), URL: ref, Ref: true}, nil
	case a.Kind == artifact.Signature && a.Signs != nil && a.Signs.Kind == artifact.Tarball:
		subject, ok := o.pushed[a.Signs.Key()]
		if !ok {
			return artifact.Location{}, fmt.Errorf("attaching the signature %s: %s was not pushed to %s in this run; publish the artifacts first", a.File, a.Signs.File, o.Repository)
		}
		if err := o.pushSignature(ctx, subject, a); err != nil {
			return artifact.Location{}, fmt.Errorf("attaching the signature %s: %w", a.File, err)
		}
	}
	return artifact.Location{}, nil
}

// push pushes one tarball and returns its reference.
func (o *OCI) push(ctx context.Context, a artifact.Artifact) (string, error) {
	layerType, artifactType := layerTypeGzip, ArtifactTypeGzip
	if a.Format == "tar+zstd" {
		layerType, artifactType = layerTypeZstd, ArtifactTypeZstd
	}
	tarDigest := v1.Hash{Algorithm: "sha256", Hex: a.SHA256}
	if err := o.store.writeBlob(ctx, tarDigest, a.Size, layerType, content{path: a.Path}); err != nil {
		return "", fmt.Errorf("pushing %s: %w", a.File, err)
	}
	configDesc, err := o.writeEmptyConfig(ctx)
	if err != nil {
		return "", err
	}
	m := ociManifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: configDesc,
		Layers: []v1.Descriptor{{MediaType: types.MediaType(layerType), Digest: tarDigest, Size: a.Size, Annotations: map[string]string{titleAnnotation: a.File}}},
		Annotations: map[string]string{
			"org.opencontainers.image.version":  a.Release.Version,
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.revision": a.Release.Source.Commit,
			"org.opencontainers.image.created":  a.Release.Created,
			targetAnnotation:                    a.Target.ID(),
		},
	}
	raw, desc, err := encode(m)
	if err != nil {
		return "", err
	}
	tag := a.Tag() + "-" + a.Target.ID()
	if have, ok, err := o.store.tagged(ctx, tag); err != nil {
		return "", fmt.Errorf("reading tag %s: %w", tag, err)
	} else if ok && have != desc.Digest && !o.Replace {
		return "", fmt.Errorf("pushing %s:%s: %w (there: %s, ours: %s); pass --replace to move the tag", o.Repository, tag, ErrExists, have, desc.Digest)
	}
	if err := o.store.putManifest(ctx, tag, types.OCIManifestSchema1, raw); err != nil {
		return "", fmt.Errorf("pushing %s:%s: %w", o.Repository, tag, err)
	}
	platform, err := v1.ParsePlatform(a.Target.Platform())
	if err != nil {
		return "", fmt.Errorf("target %s: %w", a.Target, err)
	}
	desc.Platform = platform
	desc.ArtifactType = artifactType
	desc.Annotations = map[string]string{targetAnnotation: a.Target.ID(), pythonAnnotation: a.Target.Python, accelAnnotation: a.Target.Accel}
	o.entries = append(o.entries, desc)
	if o.pushed == nil {
		o.pushed = map[string]v1.Descriptor{}
	}
	o.pushed[a.Key()] = desc
	return o.Repository + "@" + desc.Digest.String(), nil
}

// pushSignature attaches a bundle as a referrer of subject, unless one is
// attached already (signatures differ run to run; one valid one is enough).
func (o *OCI) pushSignature(ctx context.Context, subject v1.Descriptor, bundle artifact.Artifact) error {
	has, err := o.store.hasReferrer(ctx, subject.Digest, BundleArtifactType)
	if err != nil || has {
		return err
	}
	configDesc, err := o.writeEmptyConfig(ctx)
	if err != nil {
		return err
	}
	bd := v1.Hash{Algorithm: "sha256", Hex: bundle.SHA256}
	if err := o.store.writeBlob(ctx, bd, bundle.Size, BundleArtifactType, content{path: bundle.Path}); err != nil {
		return err
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ociManifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: BundleArtifactType,
		Config:  configDesc,
		Layers:  []v1.Descriptor{{MediaType: BundleArtifactType, Digest: bd, Size: bundle.Size}},
		Subject: &sub,
	}
	raw, _, err := encode(m)
	if err != nil {
		return err
	}
	return o.store.putManifest(ctx, "", types.OCIManifestSchema1, raw)
}

// PushIndex tags an index over every artifact pushed as v{version}.
func (o *OCI) PushIndex(ctx context.Context, version string) error {
	idx := ociIndex{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: o.entries, Annotations: map[string]string{"org.opencontainers.image.version": version}}
	raw, _, err := encode(idx)
	if err != nil {
		return err
	}
	if err := o.store.putManifest(ctx, "v"+version, types.OCIImageIndex, raw); err != nil {
		return fmt.Errorf("pushing %s:v%s: %w", o.Repository, version, err)
	}
	return nil
}

// writeEmptyConfig writes the empty config every manifest of ours names,
// once per run.
func (o *OCI) writeEmptyConfig(ctx context.Context) (v1.Descriptor, error) {
	if o.config != nil {
		return *o.config, nil
	}
	sum := sha256.Sum256(emptyConfig)
	d := v1.Descriptor{MediaType: emptyConfigType, Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, Size: int64(len(emptyConfig)), Data: emptyConfig}
	if err := o.store.writeBlob(ctx, d.Digest, d.Size, emptyConfigType, content{data: emptyConfig}); err != nil {
		return v1.Descriptor{}, err
	}
	o.config = &d
	return d, nil
}

type ociManifest struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type ociIndex struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func encode(v any) ([]byte, v1.Descriptor, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	sum := sha256.Sum256(raw)
	mt := types.OCIManifestSchema1
	if _, ok := v.(ociIndex); ok {
		mt = types.OCIImageIndex
	}
	return raw, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}, nil
}

// content is a blob's bytes: a file's (which a layout links rather than
// copies), or data in memory.
type content struct {
	path string
	data []byte
}

func (c content) open() (io.ReadCloser, error) {
	if c.path != "" {
		return os.Open(c.path)
	}
	return io.NopCloser(bytes.NewReader(c.data)), nil
}

// registryStore talks to a registry with go-containerregistry.
type registryStore struct {
	repo      name.Repository
	transport http.RoundTripper // insecure.Transport: https, or http to loopback without credentials
}

func (r *registryStore) opts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(redact.Keychain(authn.DefaultKeychain)), remote.WithTransport(r.transport)}
}

func (r *registryStore) writeBlob(ctx context.Context, digest v1.Hash, size int64, mediaType string, c content) error {
	l, err := partial.CompressedToLayer(&blob{digest: digest, size: size, mediaType: types.MediaType(mediaType), open: c.open})
	if err != nil {
		return err
	}
	// WriteLayer asks the registry first and skips a blob it already has.
	// go-containerregistry retries single requests, but not an upload
	// session whose PATCH failed half-way: start the blob over instead.
	return retryTransient(ctx, func() error { return remote.WriteLayer(r.repo, l, r.opts(ctx)...) })
}

// retryTransient retries fn on a registry's 5xx and 429 answers, and on
// network errors, with a growing pause.
func retryTransient(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = fn(); err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
	return err
}

func transient(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode >= 500 || terr.StatusCode == 429
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (r *registryStore) putManifest(ctx context.Context, tag string, mediaType types.MediaType, raw []byte) error {
	var ref name.Reference
	if tag == "" {
		sum := sha256.Sum256(raw)
		ref = r.repo.Digest("sha256:" + hex.EncodeToString(sum[:]))
	} else {
		ref = r.repo.Tag(tag)
	}
	return retryTransient(ctx, func() error {
		return remote.Put(ref, rawManifest{raw: raw, mediaType: mediaType}, r.opts(ctx)...)
	})
}

func (r *registryStore) tagged(ctx context.Context, tag string) (v1.Hash, bool, error) {
	d, err := remote.Head(r.repo.Tag(tag), r.opts(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return v1.Hash{}, false, nil
	}
	if err != nil {
		return v1.Hash{}, false, err
	}
	return d.Digest, true, nil
}

func (r *registryStore) hasReferrer(ctx context.Context, subject v1.Hash, artifactType string) (bool, error) {
	idx, err := remote.Referrers(r.repo.Digest(subject.String()), r.opts(ctx)...)
	if err != nil {
		return false, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return false, err
	}
	for _, d := range m.Manifests {
		if d.ArtifactType == artifactType {
			return true, nil
		}
		// Some registries report the config's media type instead of the
		// manifest's artifactType; read the manifest to be sure.
		got, err := remote.Get(r.repo.Digest(d.Digest.String()), r.opts(ctx)...)
		if err != nil {
			return false, err
		}
		var rm ociManifest
		if json.Unmarshal(got.Manifest, &rm) == nil && rm.ArtifactType == artifactType {
			return true, nil
		}
	}
	return false, nil
}

// layoutStore writes an OCI image layout, the snapshot's stand-in registry.
type layoutStore struct {
	path layout.Path
}

func (l *layoutStore) writeBlob(_ context.Context, digest v1.Hash, _ int64, _ string, c content) error {
	dst := filepath.Join(string(l.path), "blobs", digest.Algorithm, digest.Hex)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	// A file already holds the blob's bytes (its digest taken as it was
	// written): link it in, rather than read a multi-GiB tarball again.
	if c.path != "" && os.MkdirAll(filepath.Dir(dst), 0o755) == nil && os.Link(c.path, dst) == nil {
		return nil
	}
	rc, err := c.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return l.path.WriteBlob(digest, rc)
}

func (l *layoutStore) putManifest(_ context.Context, tag string, mediaType types.MediaType, raw []byte) error {
	sum := sha256.Sum256(raw)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := l.path.WriteBlob(d, io.NopCloser(bytes.NewReader(raw))); err != nil {
		return err
	}
	desc := v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw))}
	if tag == "" {
		// An untagged manifest (a referrer) is listed in index.json too, or
		// layout readers such as `oras discover --oci-layout` never see it.
		if err := l.path.RemoveDescriptors(match.Digests(d)); err != nil {
			return err
		}
		return l.path.AppendDescriptor(desc)
	}
	desc.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	if err := l.path.RemoveDescriptors(match.Annotation("org.opencontainers.image.ref.name", tag)); err != nil {
		return err
	}
	return l.path.AppendDescriptor(desc)
}

func (l *layoutStore) tagged(_ context.Context, tag string) (v1.Hash, bool, error) {
	idx, err := l.path.ImageIndex()
	if err != nil {
		return v1.Hash{}, false, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, false, err
	}
	for _, d := range m.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			return d.Digest, true, nil
		}
	}
	return v1.Hash{}, false, nil
}

func (l *layoutStore) hasReferrer(context.Context, v1.Hash, string) (bool, error) {
	return false, nil
}

// blob is a file (or bytes) whose digest is already known, so it is read
// only when it has to be uploaded.
type blob struct {
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
	open      func() (io.ReadCloser, error)
}

func (b *blob) Digest() (v1.Hash, error)           { return b.digest, nil }
func (b *blob) Compressed() (io.ReadCloser, error) { return b.open() }
func (b *blob) Size() (int64, error)               { return b.size, nil }
func (b *blob) MediaType() (types.MediaType, error) {
	return b.mediaType, nil
}

type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
