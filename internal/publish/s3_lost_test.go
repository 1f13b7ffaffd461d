package publish

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// The first PutObject's response is lost after another writer's bytes got
// there first: the SDK's retry meets 412, reading back finds other bytes,
// and the publish is refused as any existing object is.
func TestS3LostResponseOverOtherBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	other := writeObject(t, t.TempDir(), "lost.tar.gz", []byte("someone else's bytes"))
	var dropped atomic.Int32
	proxy := faultProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || dropped.Add(1) != 1 {
			return false
		}
		// Another release's upload lands; ours is lost on the wire.
		if _, err := newS3(t, srv.Endpoint).Publish(context.Background(), other); err != nil {
			t.Errorf("the other writer: %v", err)
		}
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		return true
	})
	ours := writeObject(t, t.TempDir(), "lost.tar.gz", []byte("our bytes"))
	_, err := newS3(t, proxy).Publish(context.Background(), ours)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "pass --replace to overwrite") {
		t.Errorf("publish = %v, want ErrExists and the --replace advice", err)
	}
	if data, _ := getObject(t, newS3(t, srv.Endpoint), "flash-worker/"+ours.Key()); !bytes.Equal(data, []byte("someone else's bytes")) {
		t.Errorf("the object holds %q, want the other writer's bytes untouched", data)
	}
	if dropped.Load() < 2 {
		t.Errorf("%d PUTs seen; the SDK did not retry and the test checked nothing", dropped.Load())
	}
}
