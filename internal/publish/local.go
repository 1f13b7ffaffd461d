package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/atomicfile"
)

// Local publishes into a directory laid out like the S3 bucket:
// {dir}/v{version}/{file}. It is the snapshot's channel, and a mirror.
type Local struct {
	Dir     string
	Replace bool
}

var (
	_ Publisher   = (*Local)(nil)
	_ Reader      = (*Local)(nil)
	_ LatestMover = (*Local)(nil)
)

func (l *Local) Name() string { return "local" }

func (l *Local) path(key string) string { return filepath.Join(l.Dir, filepath.FromSlash(key)) }

// URL is the file:// URL of key.
func (l *Local) URL(key string) string {
	abs, err := filepath.Abs(l.path(key))
	if err != nil {
		abs = l.path(key)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

func (l *Local) Fetch(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(l.path(key))
}

func (l *Local) MoveLatest(ctx context.Context, version string, body []byte) (bool, error) {
	p := l.path("latest.json")
	if data, err := os.ReadFile(p); err == nil {
		var cur Latest
		if json.Unmarshal(data, &cur) == nil && !Newer(version, cur.Version) {
			return false, nil
		}
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.Write(p, body, 0o644)
}

func (l *Local) Publish(ctx context.Context, obj artifact.Artifact) (artifact.Location, error) {
	dst := l.path(obj.Key())
	at := artifact.Location{Channel: l.Name(), URL: l.URL(obj.Key())}
	if have, err := archive.FileSHA256(dst); err == nil {
		if have == obj.SHA256 {
			return at, nil
		}
		if !l.Replace {
			return artifact.Location{}, fmt.Errorf("publishing %s to %s: %w (there: sha256 %s, ours: sha256 %s); pass --replace to overwrite", obj.Key(), dst, ErrExists, have, obj.SHA256)
		}
	}
	if err := copyAtomic(ctx, obj.Path, dst); err != nil {
		return artifact.Location{}, fmt.Errorf("publishing %s to %s: %w", obj.Key(), dst, err)
	}
	return at, nil
}

func copyAtomic(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.WriteWith(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, readerCtx{ctx, in})
		return err
	})
}

// readerCtx stops a long copy when the context is cancelled.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
