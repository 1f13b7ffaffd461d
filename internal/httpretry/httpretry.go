// Package httpretry makes idempotent requests (GET, HEAD) survive a
// connection dropped before or in the middle of the response: the SDKs
// retry a request that got no answer, but a response whose body is cut
// reaches them as a decoding error (a 404 whose XML ends early), which
// they give up on. Here a small response is read whole before the caller
// sees it, and a failure on the way sends the same request again.
//
// Writes are left to the callers: theirs are conditional and resolved by
// digest when a retry meets the object they wrote.
package httpretry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	// Attempts is how many times an idempotent request is sent at most.
	Attempts = 4
	// MaxBuffered is the largest body read ahead; a larger one (a
	// download) is handed on as it streams, for the caller to resume.
	MaxBuffered = 1 << 20
)

// Doer is an HTTP client as the AWS SDK takes one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Transport retries the idempotent requests it sends through Next.
type Transport struct{ Next http.RoundTripper }

func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	return send(r, t.Next.RoundTrip)
}

// Client retries the idempotent requests it sends through Next.
type Client struct{ Next Doer }

func (c Client) Do(r *http.Request) (*http.Response, error) { return send(r, c.Next.Do) }

var (
	_ http.RoundTripper = Transport{}
	_ Doer              = Client{}
)

func idempotent(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.Body == nil || r.Body == http.NoBody)
}

func send(r *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	if !idempotent(r) {
		return next(r)
	}
	var err error
	for attempt := range Attempts {
		if attempt > 0 {
			select {
			case <-r.Context().Done():
				return nil, r.Context().Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		var resp *http.Response
		if resp, err = next(r); err != nil {
			if r.Context().Err() != nil {
				return nil, err
			}
			continue
		}
		if resp, err = readAhead(r, resp); err == nil {
			return resp, nil
		}
	}
	return nil, err
}

// readAhead reads a body of up to MaxBuffered bytes, so that a cut one is
// an error here, where the request can be sent again.
func readAhead(r *http.Request, resp *http.Response) (*http.Response, error) {
	if r.Method == http.MethodHead || resp.ContentLength > MaxBuffered {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBuffered+1))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("reading the response to %s %s%s: %w", r.Method, r.URL.Host, r.URL.Path, err)
	}
	if len(body) > MaxBuffered { // no length given, and large: stream the rest
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
