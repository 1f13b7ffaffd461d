// Package publish puts release files on channels (a local directory, S3,
// GitHub Releases, an OCI registry) without ever leaving a consumer looking
// at a half-published release (DESIGN §6).
package publish

import (
	"context"
	"errors"
	"io"

	"golang.org/x/mod/semver"
)

// Object is one file to publish. Key is its path below the channel's root,
// "v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz".
type Object struct {
	Key    string
	Path   string
	Size   int64
	SHA256 string
}

// Publisher is a channel.
type Publisher interface {
	// Name is the channel's name in the config and in messages ("local").
	Name() string
	// Publish stores obj if it is not there yet and returns its URL. The same
	// bytes already there are a no-op; different bytes are ErrExists unless
	// the publisher was made to replace.
	Publish(ctx context.Context, obj Object) (url string, err error)
}

// ErrExists is returned when a name is taken by different bytes.
var ErrExists = errors.New("already published with different content")

// Reader is a channel that can hand back what it holds: a re-run uses it to
// keep a signature that is already published and still valid.
type Reader interface {
	Fetch(ctx context.Context, key string) (io.ReadCloser, error)
	URL(key string) string
}

// LatestMover is a channel with a `latest.json` pointer.
type LatestMover interface {
	// MoveLatest points latest.json at version, unless it already points at
	// the same or a newer one; it reports whether it moved.
	MoveLatest(ctx context.Context, version string, body []byte) (bool, error)
}

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
// and answers with the URL the object would have.
type DryRun struct {
	Inner Publisher
	Log   func(msg string, args ...any)
}

var _ Publisher = (*DryRun)(nil)

func (d *DryRun) Name() string { return d.Inner.Name() }

func (d *DryRun) Publish(_ context.Context, obj Object) (string, error) {
	d.Log("would publish", "channel", d.Inner.Name(), "key", obj.Key, "bytes", obj.Size, "sha256", obj.SHA256)
	if r, ok := d.Inner.(Reader); ok {
		return r.URL(obj.Key), nil
	}
	return "", nil
}
