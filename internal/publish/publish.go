// Package publish puts release files on channels (a local directory, S3,
// GitHub Releases, an OCI registry) without ever leaving a consumer looking
// at a half-published release; docs/publish.md is the order it keeps.
//
// A channel is a Publisher, made from its config section by one line of
// the table in channels.go. What only some channels do is one of the
// optional interfaces below; only Set (set.go) asks for them, so the
// release steps call one concrete type and never assert.
package publish

import (
	"context"
	"errors"
	"io"

	"golang.org/x/mod/semver"

	"github.com/runpod-workers/fwrelease/internal/artifact"
)

// Publisher is a channel.
type Publisher interface {
	// Name is the channel's name in the config and in messages ("local").
	Name() string
	// Publish stores a if it is not there yet and returns where it is (the
	// zero Location for a kind the channel does not carry). The same bytes
	// already there are a no-op; different bytes are ErrExists unless the
	// publisher was made to replace.
	Publish(ctx context.Context, a artifact.Artifact) (artifact.Location, error)
}

// ErrExists is returned when a name is taken by different bytes.
var ErrExists = errors.New("already published with different content")

// What only some channels do; Set passes each on to the channels that
// have it.
type (
	// Preflighter checks every artifact before any is published (GitHub's
	// 2 GiB limit).
	Preflighter interface {
		Preflight(arts []artifact.Artifact) error
	}

	// Reader is a channel that can hand back what it holds: a re-run uses it
	// to keep a signature that is already published and still valid.
	Reader interface {
		Fetch(ctx context.Context, key string) (io.ReadCloser, error)
		URL(key string) string
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

// dryRun is a channel that publishes nothing: it logs what it would do and
// answers with the URL the artifact would have. It checks what the channel
// would refuse (Preflighter), and has nothing else optional, so a dry run
// neither finalizes nor moves latest.
type dryRun struct {
	inner Publisher
	log   func(msg string, args ...any)
}

var (
	_ Publisher   = (*dryRun)(nil)
	_ Preflighter = (*dryRun)(nil)
)

func (d *dryRun) Name() string { return d.inner.Name() }

func (d *dryRun) Publish(_ context.Context, a artifact.Artifact) (artifact.Location, error) {
	d.log("would publish", "channel", d.inner.Name(), "key", a.Key(), "bytes", a.Size, "sha256", a.SHA256)
	if r, ok := d.inner.(Reader); ok {
		return artifact.Location{Channel: d.inner.Name(), URL: r.URL(a.Key())}, nil
	}
	return artifact.Location{}, nil
}

func (d *dryRun) Preflight(arts []artifact.Artifact) error {
	if p, ok := d.inner.(Preflighter); ok {
		return p.Preflight(arts)
	}
	return nil
}
