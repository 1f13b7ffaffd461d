// Package resume continues a download whose body is cut off mid-way, which
// neither net/http nor the AWS SDK retries: it reopens the source at the
// offset reached (a Range request pinned to the same ETag) and reads on.
package resume

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// MaxReopens is how many times a download is resumed before giving up.
const MaxReopens = 3

// Reader reads Body, reopening at the offset reached when a read fails.
type Reader struct {
	Ctx    context.Context
	Body   io.ReadCloser
	Reopen func(ctx context.Context, offset int64) (io.ReadCloser, error) // nil: never resume
	read   int64
	tries  int
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.Body.Read(p)
	r.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) || r.Reopen == nil || r.Ctx.Err() != nil || r.tries >= MaxReopens {
		return n, err
	}
	r.tries++
	r.Body.Close()
	body, rerr := r.Reopen(r.Ctx, r.read)
	if rerr != nil {
		return n, fmt.Errorf("%w (resuming at byte %d: %v)", err, r.read, rerr)
	}
	r.Body = body
	if n > 0 {
		return n, nil
	}
	return r.Read(p)
}

func (r *Reader) Close() error { return r.Body.Close() }
