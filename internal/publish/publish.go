// Package publish puts release files on channels (a local directory, S3,
// GitHub Releases, an OCI registry) without ever leaving a consumer looking
// at a half-published release; docs/publish.md is the order it keeps.
//
// A channel is a Publisher, made from its config section by one line of
// the table in channels.go; what only some channels can do is one of the
// optional interfaces below, which a release step asks for with a type
// assertion.
package publish

import (
	"context"
	"errors"
	"io"

	"golang.org/x/mod/semver"

	"github.com/runpod-workers/fwrelease/internal/artifact"
)

// Object is one file to publish, described once for every channel: the
// file channels store it under its Key, GitHub under its release's Tag,
// the OCI registry as an artifact (a tarball) or a referrer (its
// signature).
type Object struct {
	artifact.Artifact
	Kind  Kind
	Signs string // signatures: the Key of the artifact signed
	// Revision and Created annotate an artifact where the channel keeps
	// metadata (OCI): the source commit, and the release's pinned time.
	Revision, Created string
}

// Kind says what an Object is to a channel that treats kinds differently.
type Kind int

const (
	KindFile      Kind = iota // the manifest, or any other file
	KindArtifact              // a target's tarball
	KindSignature             // a Sigstore bundle
)

// Publisher is a channel.
type Publisher interface {
	// Name is the channel's name in the config and in messages ("local").
	Name() string
	// Publish stores obj if it is not there yet and returns its URL ("" for
	// an object the channel does not carry). The same bytes already there
	// are a no-op; different bytes are ErrExists unless the publisher was
	// made to replace.
	Publish(ctx context.Context, obj Object) (url string, err error)
}

// ErrExists is returned when a name is taken by different bytes.
var ErrExists = errors.New("already published with different content")

// What only some channels do. Release steps ask for them with a type
// assertion, and multi passes each on to the channels that have it.
type (
	// Preflighter checks every object before any is published (GitHub's
	// 2 GiB limit).
	Preflighter interface {
		Preflight(objs []Object) error
	}

	// Reader is a channel that can hand back what it holds: a re-run uses it
	// to keep a signature that is already published and still valid.
	Reader interface {
		Fetch(ctx context.Context, key string) (io.ReadCloser, error)
		URL(key string) string
	}

	// Referencer is a channel whose answer for an artifact is a content
	// reference (repository@sha256:…), which the manifest keeps in its
	// `oci` field rather than among the download URLs.
	Referencer interface {
		References() bool
	}

	// Indexer ties every artifact of a release together once they are all
	// published (OCI's image index tagged v{version}).
	Indexer interface {
		PushIndex(ctx context.Context, version string) error
	}

	// Finalizer makes a release visible once complete (GitHub un-drafts it).
	Finalizer interface {
		Finalize(ctx context.Context, version string) error
	}

	// LatestMover is a channel with a `latest.json` pointer.
	LatestMover interface {
		// MoveLatest points latest.json at version, unless it already points
		// at the same or a newer one; it reports whether it moved.
		MoveLatest(ctx context.Context, version string, body []byte) (bool, error)
	}
)

// Latest is the body of latest.json.
type Latest struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Manifest string `json:"manifest"` // key of the manifest, "v1.2.0/manifest.json"
}

// Newer reports whether semantic version a is newer than b.
func Newer(a, b string) bool {
	return semver.Compare("v"+a, "v"+b) > 0
}

// DryRun wraps a channel and publishes nothing: it logs what it would do
// and answers with the URL the object would have. It checks what the
// channel would refuse (Preflighter), and nothing else optional.
type DryRun struct {
	Inner Publisher
	Log   func(msg string, args ...any)
}

var (
	_ Publisher   = (*DryRun)(nil)
	_ Preflighter = (*DryRun)(nil)
)

func (d *DryRun) Name() string { return d.Inner.Name() }

func (d *DryRun) Publish(_ context.Context, obj Object) (string, error) {
	d.Log("would publish", "channel", d.Inner.Name(), "key", obj.Key(), "bytes", obj.Size, "sha256", obj.SHA256)
	if r, ok := d.Inner.(Reader); ok {
		return r.URL(obj.Key()), nil
	}
	return "", nil
}

func (d *DryRun) Preflight(objs []Object) error {
	if p, ok := d.Inner.(Preflighter); ok {
		return p.Preflight(objs)
	}
	return nil
}
