package publish

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// A re-run of a publish sends the server nothing that writes, judged by
// the requests that reached versitygw (not by our own counters or logs),
// for an object put whole and for one uploaded in parts.
func TestS3RepublishWritesNothingAtTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test against versitygw; skipped with -short")
	}
	srv := testserver.StartS3(t, "releases")
	srv.SetEnv(t)
	for _, tt := range []struct {
		name      string
		size      int
		newS3     func(*testing.T, string) *S3
		firstRun  int // writes the first publish must make, at least
		multipart bool
	}{
		{"single put", 1 << 20, newS3, 1, false},
		{"multipart", 11<<20 + 1, multipartS3, 5, true}, // create, 3 parts, complete
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := testserver.Record(t, srv.Endpoint)
			_, obj := randomObject(t, "twice-"+tt.name+".tar.gz", tt.size)
			if _, err := tt.newS3(t, rec.URL).Publish(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			first := rec.Writes()
			parts := 0
			for _, q := range first {
				if q.Method == http.MethodPut && q.Query.Has("partNumber") {
					parts++
				}
			}
			if len(first) < tt.firstRun || (parts > 0) != tt.multipart {
				t.Fatalf("the first publish made %d writes (%d parts); want at least %d, multipart %v: the test checks nothing", len(first), parts, tt.firstRun, tt.multipart)
			}

			rec.Reset()
			if _, err := tt.newS3(t, rec.URL).Publish(context.Background(), obj); err != nil {
				t.Fatalf("re-publishing identical bytes: %v", err)
			}
			for _, q := range rec.Writes() {
				t.Errorf("the re-run sent %s %s?%s (status %d); want no write at all", q.Method, q.Path, q.Query.Encode(), q.Status)
			}
			if len(rec.Requests()) == 0 {
				t.Error("the re-run sent no request at all; it cannot have checked the object is there")
			}
		})
	}
}

func headObject(t *testing.T, p *S3, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := p.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &key})
	if err != nil {
		t.Fatalf("HEAD %s: %v", key, err)
	}
	return out
}

// plainGET fetches u with net/http and no credentials, as the start
// command's curl does, after making the bucket publicly readable.
func plainGET(t *testing.T, p *S3, u string) ([]byte, http.Header) {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, p.Bucket)
	if _, err := p.Client.PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: &p.Bucket, Policy: &policy}); err != nil {
		t.Fatalf("making %s public: %v", p.Bucket, err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", u, resp.Status, err, data)
	}
	return data, resp.Header
}
