package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// resumingBody continues a download whose body is cut off mid-way, which
// net/http does not retry: it asks for the rest with a Range request (and
// If-Range, so a changed file is not spliced onto the old one).
type resumingBody struct {
	ctx     context.Context
	client  *http.Client
	url     string
	body    io.ReadCloser
	etag    string
	read    int64
	retries int
}

const maxResumes = 3

func (r *resumingBody) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) || r.ctx.Err() != nil || r.retries >= maxResumes || r.etag == "" {
		return n, err
	}
	r.retries++
	r.body.Close()
	body, rerr := r.rangeFrom(r.read)
	if rerr != nil {
		return n, fmt.Errorf("%w (resuming at byte %d: %v)", err, r.read, rerr)
	}
	r.body = body
	if n > 0 {
		return n, nil
	}
	return r.Read(p)
}

func (r *resumingBody) rangeFrom(off int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	req.Header.Set("If-Range", r.etag)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s with Range: %s", r.url, resp.Status)
	}
	return resp.Body, nil
}

func (r *resumingBody) Close() error { return r.body.Close() }
