package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/runpod-workers/fwrelease/internal/resume"
)

// resumable wraps an HTTP response body so that a cut-off download goes on
// with a Range request; If-Range makes sure a changed file is not spliced
// onto the old one.
func resumable(ctx context.Context, client *http.Client, url string, resp *http.Response) io.ReadCloser {
	etag := resp.Header.Get("ETag")
	r := &resume.Reader{Ctx: ctx, Body: resp.Body}
	if etag == "" {
		return r
	}
	r.Reopen = func(ctx context.Context, off int64) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
		req.Header.Set("If-Range", etag)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s with Range: %s", url, resp.Status)
		}
		return resp.Body, nil
	}
	return r
}
