package publish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// Parts go out with their CRC32C and an unsigned payload, so the client
// hashes no part with SHA-256, and the object ends up with a whole-object
// CRC32C; a single PUT is signed with the object's sha256 (which the build
// knows: the SDK would compute the same value, so the headers alone cannot
// show that it did not). Judged by the headers versitygw got.
func TestS3UploadsCarryChecksumsNotPayloadHashes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	rec := testserver.Record(t, srv.Endpoint)

	data, obj := randomObject(t, "parts.tar.gz", 11<<20+7)
	if _, err := multipartS3(t, rec.URL).Publish(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, q := range rec.Writes() {
		if q.Method != http.MethodPut || !q.Query.Has("partNumber") {
			continue
		}
		parts++
		if got := q.Header.Get("X-Amz-Content-Sha256"); got != unsignedPayload {
			t.Errorf("part %s: X-Amz-Content-Sha256 %q, want %q", q.Query.Get("partNumber"), got, unsignedPayload)
		}
		n, _ := strconv.Atoi(q.Query.Get("partNumber"))
		part := data[(n-1)*5<<20 : min(n*5<<20, len(data))]
		if got, want := q.Header.Get("X-Amz-Checksum-Crc32c"), crc32cBase64(part); got != want {
			t.Errorf("part %s: x-amz-checksum-crc32c %q, want %q", q.Query.Get("partNumber"), got, want)
		}
	}
	if parts != 3 {
		t.Fatalf("%d parts uploaded, want 3", parts)
	}
	// The object's checksum covers it whole, so a download can check it.
	p := newS3(t, srv.Endpoint)
	key := p.key(obj.Key())
	head, err := p.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := deref(head.ChecksumCRC32C), crc32cBase64(data); got != want || head.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("object checksum %s crc32c %q, want FULL_OBJECT %q", head.ChecksumType, got, want)
	}

	rec.Reset()
	_, small := randomObject(t, "small.tar.gz", 1<<20)
	if _, err := newS3(t, rec.URL).Publish(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	puts := 0
	for _, q := range rec.Writes() {
		if q.Method == http.MethodPut {
			puts++
			if got := q.Header.Get("X-Amz-Content-Sha256"); got != small.SHA256 {
				t.Errorf("PUT %s: X-Amz-Content-Sha256 %q, want the object's sha256 %s", q.Path, got, small.SHA256)
			}
		}
	}
	if puts != 1 {
		t.Fatalf("%d PUTs for a small object, want 1", puts)
	}
}

// A byte changed on the way to the server fails the upload: the server
// checks each part's CRC32C, and a single PUT's sha256. Nothing is left
// behind, and a clean run afterwards stores the right bytes.
func TestS3CorruptedInTransitIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	for _, tt := range []struct {
		name  string
		size  int
		hit   func(*http.Request) bool
		newS3 func(*testing.T, string) *S3
	}{
		{"part", 11 << 20, func(r *http.Request) bool { return r.URL.Query().Get("partNumber") == "2" }, multipartS3},
		{"single put", 1 << 20, func(r *http.Request) bool { return r.Method == http.MethodPut && r.ContentLength > 0 }, newS3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, obj := randomObject(t, "corrupt-"+tt.name+".tar.gz", tt.size)
			var flipped atomic.Int32
			proxy := faultProxy(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request) bool {
				if tt.hit(r) {
					body, _ := io.ReadAll(r.Body)
					body[len(body)/2] ^= 0x01
					r.Body = io.NopCloser(bytes.NewReader(body))
					flipped.Add(1)
				}
				return false
			})
			if _, err := tt.newS3(t, proxy).Publish(context.Background(), obj); err == nil {
				t.Fatal("publish through a proxy that corrupts the body succeeded")
			}
			if flipped.Load() == 0 {
				t.Fatal("the proxy changed no request; the test checked nothing")
			}
			p := newS3(t, srv.Endpoint)
			key := p.key(obj.Key())
			if _, err := p.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &key}); !isNotFound(err) {
				t.Errorf("a refused upload left an object: %v", err)
			}
			if n := openUploads(t, p); n != 0 {
				t.Errorf("%d multipart uploads left open", n)
			}
			if _, err := tt.newS3(t, srv.Endpoint).Publish(context.Background(), obj); err != nil {
				t.Fatalf("the clean run: %v", err)
			}
			if got, _ := getObject(t, p, key); !bytes.Equal(got, data) {
				t.Error("the clean run stored other bytes")
			}
		})
	}
}

func crc32cBase64(data []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, castagnoli)))
}
