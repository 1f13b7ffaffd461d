package httpretry

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A server on 127.0.0.1 that cuts its first `cut` responses half-way
// through the body, then answers whole.
func cutting(t *testing.T, cut int32, body string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusNotFound)
		if n.Add(1) > cut {
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, body[:len(body)/2])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestCutResponses(t *testing.T) {
	const body = "<Error><Code>NoSuchKey</Code></Error>"
	tests := []struct {
		name     string
		method   string
		cut      int32
		ok       bool
		requests int32
	}{
		{"a GET cut once is sent again", http.MethodGet, 1, true, 2},
		{"a GET cut three times is sent a fourth", http.MethodGet, Attempts - 1, true, Attempts},
		{"a GET cut every time fails", http.MethodGet, 100, false, Attempts},
		{"a POST is never sent again", http.MethodPost, 1, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := cutting(t, tt.cut, body)
			c := &http.Client{Transport: Transport{Next: http.DefaultTransport}}
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			resp, err := c.Do(req)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if ok := err == nil && string(got) == body; ok != tt.ok {
				t.Errorf("whole body %v (%q, %v), want %v", ok, got, err, tt.ok)
			}
			if n.Load() != tt.requests {
				t.Errorf("%d requests reached the server, want %d", n.Load(), tt.requests)
			}
		})
	}
}

// A body over MaxBuffered streams as it comes (the caller resumes it).
func TestLargeBodyStreams(t *testing.T) {
	big := strings.Repeat("x", MaxBuffered+10)
	srv, n := cutting(t, 1, big)
	resp, err := Client{Next: http.DefaultClient}.Do(mustGet(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil || len(got) != len(big)/2 || n.Load() != 1 {
		t.Errorf("read %d bytes (%v) in %d requests; want the cut half, an error, one request", len(got), err, n.Load())
	}
}

func mustGet(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
