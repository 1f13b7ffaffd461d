// Package publish puts release files on channels (a local directory, S3,
// GitHub Releases, an OCI registry) without ever leaving a consumer looking
// at a half-published release (DESIGN §6).
package publish

import (
	"context"
	"errors"
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
