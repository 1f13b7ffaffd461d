package publish

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// S3 answering 503 SlowDown: the SDK's retries (with backoff) get through,
// and the object lands once.
func TestS3Throttled(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	var throttled atomic.Int32
	proxy := faultProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && throttled.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	obj := writeObject(t, t.TempDir(), "throttled.tar.gz", []byte("throttled bytes"))
	p := newS3(t, proxy)
	if _, err := p.Publish(context.Background(), obj); err != nil {
		t.Fatalf("publish through SlowDown: %v", err)
	}
	if throttled.Load() < 3 {
		t.Errorf("the proxy throttled %d requests; the test checked nothing", throttled.Load())
	}
	if data, _ := getObject(t, p, "flash-worker/"+obj.Key); string(data) != "throttled bytes" {
		t.Errorf("stored %q", data)
	}
}

// Two publishes of one name with different bytes at the same moment: one
// wins, the other is refused; the object is whole, one or the other.
func TestS3ConcurrentPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	contents := []string{strings.Repeat("a", 1<<20), strings.Repeat("b", 1<<20)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range contents {
		obj := writeObject(t, t.TempDir(), "race.tar.gz", []byte(contents[i]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newS3(t, srv.Endpoint).Publish(context.Background(), obj)
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if !errors.Is(err, ErrExists) && !strings.Contains(err.Error(), "PreconditionFailed") && !strings.Contains(err.Error(), "412") {
				t.Errorf("the loser failed for another reason: %v", err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d of 2 racing publishes failed, want exactly 1: %v", failed, errs)
	}
	p := newS3(t, srv.Endpoint)
	data, _ := getObject(t, p, "flash-worker/v1.2.0/race.tar.gz")
	if string(data) != contents[0] && string(data) != contents[1] {
		t.Errorf("the object is mixed: %d bytes", len(data))
	}
}
