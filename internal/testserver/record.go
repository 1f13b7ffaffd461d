package testserver

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Request is what a Recorder saw of one request on its way to the server.
type Request struct {
	Method      string
	Path        string
	Query       url.Values
	Header      http.Header
	Status      int  // the server's answer; 0 when Intercept answered instead
	Intercepted bool // Intercept handled it; the server never saw it
}

// Writes says whether the request asks the server to change something
// (anything but GET, HEAD and OPTIONS): an upload, a part, a completion.
func (r Request) Writes() bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Recorder is a reverse proxy on 127.0.0.1 in front of a real server. It
// keeps a record of every request that passed through, so a test judges
// what the client did by what reached the server, not by the client's own
// counters or log lines.
type Recorder struct {
	URL string // point the client here instead of at the server

	mu   sync.Mutex
	reqs []Request
}

// Record starts a Recorder forwarding to endpoint (http://host:port) until
// the test ends.
func Record(t testing.TB, endpoint string) *Recorder {
	t.Helper()
	return RecordWith(t, endpoint, nil)
}

// RecordWith is Record with a fault: intercept sees each request after it
// is recorded and may answer it itself (returning true), or let it through
// to the server (false).
func RecordWith(t testing.TB, endpoint string, intercept func(http.ResponseWriter, *http.Request) bool) *Recorder {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("recording proxy for %q: %v", endpoint, err)
	}
	rec := &Recorder{}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := rec.add(Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
		if intercept != nil && intercept(w, r) {
			rec.update(i, func(q *Request) { q.Intercepted = true })
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		rp.ServeHTTP(sw, r)
		rec.update(i, func(q *Request) { q.Status = sw.status })
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

func (rec *Recorder) add(q Request) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, q)
	return len(rec.reqs) - 1
}

func (rec *Recorder) update(i int, f func(*Request)) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if i < len(rec.reqs) {
		f(&rec.reqs[i])
	}
}

// Requests is a copy of the record so far, in arrival order.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Request(nil), rec.reqs...)
}

// Writes is the recorded requests that would change something on the
// server.
func (rec *Recorder) Writes() []Request {
	var w []Request
	for _, q := range rec.Requests() {
		if q.Writes() {
			w = append(w, q)
		}
	}
	return w
}

// Reset forgets the record, so a test can look at one phase alone.
func (rec *Recorder) Reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = nil
}

// statusWriter remembers the status the server answered; Unwrap lets the
// reverse proxy flush through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
