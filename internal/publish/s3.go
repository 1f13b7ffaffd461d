package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/runpod-workers/fwrelease/internal/artifact"
)

// S3 publishes to a bucket under {prefix}/v{version}/{file}. Objects are
// created with If-None-Match: * so two racing releases cannot overwrite each
// other, carry their sha256 as metadata so a re-run can skip them without
// reading them, and are uploaded in parts, from the file on disk, above a
// threshold: memory stays at one buffer per part in flight.
//
// No upload hashes the bytes it sends with SHA-256: the object's digest is
// known from the build. A single PUT is signed with that digest as its
// payload hash and carries it as its checksum, so the server checks the
// whole object; each part of a multipart upload carries a CRC32C (which the
// CPU computes in hardware) that the server checks, and is sent unsigned.
//
// Not the SDK's transfer manager (feature/s3/transfermanager): it copies
// each part into a buffer of its own, so its memory grows with part size
// times parts in flight, and on the same server it was slower and used
// more CPU (docs/publish.md).
type S3 struct {
	Client      *s3.Client
	Bucket      string
	Prefix      string
	PublicURL   string // base URL of the bucket for the manifest; default: the endpoint's
	Replace     bool
	PartSize    int64 // default 16 MiB
	Threshold   int64 // multipart above this; default 64 MiB
	Concurrency int   // parts in flight; default 4
	Log         *slog.Logger
	Progress    Progress

	// Uploaded counts artifact bytes sent, so tests and the summary can
	// tell a no-op re-run from a real one.
	Uploaded int64
}

var (
	_ Publisher   = (*S3)(nil)
	_ Reader      = (*S3)(nil)
	_ LatestMover = (*S3)(nil)
)

const (
	shaMetaKey     = "sha256" // x-amz-meta-sha256: the whole object's hex sha256
	immutableCache = "public, max-age=31536000, immutable"
)

func (p *S3) Name() string { return "s3" }

func (p *S3) key(k string) string { return path.Join(p.Prefix, k) }

// URL is where a consumer downloads key from.
func (p *S3) URL(key string) string {
	base := strings.TrimRight(p.PublicURL, "/")
	return base + "/" + (&url.URL{Path: p.key(key)}).EscapedPath()
}

func (p *S3) Publish(ctx context.Context, obj artifact.Artifact) (artifact.Location, error) {
	u, err := p.publish(ctx, obj)
	if err != nil {
		return artifact.Location{}, err
	}
	return artifact.Location{Channel: p.Name(), URL: u}, nil
}

func (p *S3) publish(ctx context.Context, obj artifact.Artifact) (string, error) {
	key := p.key(obj.Key())
	where := fmt.Sprintf("s3://%s/%s", p.Bucket, key)
	have, exists, err := p.remoteSHA256(ctx, key)
	if err != nil {
		return "", fmt.Errorf("checking %s: %w", where, err)
	}
	if exists && have == obj.SHA256 {
		p.logger().Debug("already published", "object", where)
		return p.URL(obj.Key()), nil
	}
	refused := func(have string) error {
		return fmt.Errorf("publishing %s to %s: %w (there: sha256 %s, ours: sha256 %s); pass --replace to overwrite", obj.Key(), where, ErrExists, have, obj.SHA256)
	}
	if exists && !p.Replace {
		return "", refused(have)
	}
	if obj.Size > p.threshold() {
		err = p.multipart(ctx, key, obj, exists)
	} else {
		err = p.put(ctx, key, obj, exists)
	}
	if isPreconditionFailed(err) {
		// The SDK retries a write whose response was lost; the retry then
		// meets the object the first attempt stored. Ours if it holds our
		// digest; someone else's otherwise.
		if have, ok, herr := p.remoteSHA256(ctx, key); herr == nil && ok {
			if have != obj.SHA256 {
				return "", refused(have)
			}
			p.logger().Warn("a conditional write was refused, but the object holds our bytes (a retried write whose first response was lost)", "object", where)
			// That read was the read-back; and, as below, an upload is
			// counted once it is judged ours.
			p.Uploaded += obj.Size
			return p.URL(obj.Key()), nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("uploading %s to %s: %w", obj.Path, where, err)
	}
	// Read back what the store now holds under the name.
	got, ok, err := p.remoteSHA256(ctx, key)
	if err != nil || !ok || got != obj.SHA256 {
		return "", fmt.Errorf("reading back %s: sha256 %s, want %s (%v)", where, got, obj.SHA256, err)
	}
	p.Uploaded += obj.Size
	p.logger().Info("uploaded", "object", where, "bytes", obj.Size)
	return p.URL(obj.Key()), nil
}

func (p *S3) threshold() int64 {
	if p.Threshold > 0 {
		return p.Threshold
	}
	return 64 << 20
}

func (p *S3) partSize() int64 {
	if p.PartSize > 0 {
		return p.PartSize
	}
	return 16 << 20
}

func (p *S3) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p.Log
}

// remoteSHA256 is the object's sha256 from its metadata, or, for an object
// someone else uploaded, from reading it.
func (p *S3) remoteSHA256(ctx context.Context, key string) (string, bool, error) {
	head, err := p.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &key})
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if sum := head.Metadata[shaMetaKey]; sum != "" {
		return sum, true, nil
	}
	body, err := p.get(ctx, key)
	if err != nil {
		return "", true, err
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", true, err
	}
	return hex.EncodeToString(h.Sum(nil)), true, nil
}

func (p *S3) put(ctx context.Context, key string, obj artifact.Artifact, replacing bool) error {
	f, err := os.Open(obj.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum, _ := hex.DecodeString(obj.SHA256)
	in := &s3.PutObjectInput{
		Bucket:         &p.Bucket,
		Key:            &key,
		Body:           &trackedReader{r: f, t: newTracker(obj.Key(), obj.Size, p.Progress)},
		ContentLength:  aws.Int64(obj.Size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		ContentType:    aws.String(contentType(key)),
		CacheControl:   p.cacheControl(key),
		Metadata:       map[string]string{shaMetaKey: obj.SHA256},
	}
	if !replacing {
		in.IfNoneMatch = aws.String("*")
	}
	_, err = p.Client.PutObject(ctx, in, withPayloadHash(obj.SHA256))
	return err
}

// multipart uploads obj in parts read straight from the file, several at
// a time, and aborts the upload on any failure so none is left open.
func (p *S3) multipart(ctx context.Context, key string, obj artifact.Artifact, replacing bool) error {
	created, err := p.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            &p.Bucket,
		Key:               &key,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		ChecksumType:      types.ChecksumTypeFullObject,
		ContentType:       aws.String(contentType(key)),
		CacheControl:      p.cacheControl(key),
		Metadata:          map[string]string{shaMetaKey: obj.SHA256},
	})
	if err != nil {
		return err
	}
	abort := func(cause error) error {
		// A fresh context: the upload must be aborted even when ctx was
		// cancelled (Ctrl-C), or its parts are billed forever.
		_, aerr := p.Client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &p.Bucket, Key: &key, UploadId: created.UploadId})
		return errors.Join(cause, aerr)
	}
	parts, err := p.uploadParts(ctx, key, *created.UploadId, obj)
	if err != nil {
		return abort(err)
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &p.Bucket, Key: &key, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if !replacing {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := p.Client.CompleteMultipartUpload(ctx, in); err != nil {
		// The SDK does not retry a Complete whose response was lost; the
		// object may well be there. It is ours if it has our digest.
		if got, ok, herr := p.remoteSHA256(ctx, key); herr == nil && ok && got == obj.SHA256 {
			p.logger().Warn("completing the upload failed but the object is complete", "key", key, "error", err)
			return nil
		}
		return abort(err)
	}
	return nil
}

func (p *S3) uploadParts(ctx context.Context, key, uploadID string, obj artifact.Artifact) ([]types.CompletedPart, error) {
	f, err := os.Open(obj.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := p.partSize()
	n := int((obj.Size + size - 1) / size)
	progress := newTracker(obj.Key(), obj.Size, p.Progress)
	parts := make([]types.CompletedPart, n)
	// On a failure no new part starts, but the parts in flight are let
	// finish rather than cancelled: a request cut off mid-body can still be
	// landing on the server after the abort, re-creating the upload.
	var g errgroup.Group
	var failed atomic.Bool
	g.SetLimit(4)
	if p.Concurrency > 0 {
		g.SetLimit(p.Concurrency)
	}
	for i := 0; i < n; i++ {
		if failed.Load() || ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			num := int32(i + 1)
			part, err := p.uploadPart(ctx, key, uploadID, num, io.NewSectionReader(f, int64(i)*size, min(size, obj.Size-int64(i)*size)), progress)
			if err != nil {
				failed.Store(true)
				return fmt.Errorf("part %d: %w", num, err)
			}
			parts[i] = part
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return parts, nil
}

// uploadPart sends one part from the file. Its CRC32C goes in a header,
// so it is read once before it is sent: from the page cache, at the speed
// of the CPU's CRC instruction, it costs a few milliseconds a part (over
// plain http the SDK would read it once more for the same reason, and
// SHA-256 it besides). The payload is sent unsigned: the server checks the
// CRC32C instead, which is what the SDK does over https anyway; plain http
// is allowed only to loopback (internal/insecure).
func (p *S3) uploadPart(ctx context.Context, key, uploadID string, num int32, part *io.SectionReader, progress *tracker) (types.CompletedPart, error) {
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(part, 0, part.Size())); err != nil {
		return types.CompletedPart{}, err
	}
	sum := base64.StdEncoding.EncodeToString(h.Sum(nil))
	out, err := p.Client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &p.Bucket, Key: &key, UploadId: &uploadID, PartNumber: &num,
		Body: &trackedReader{r: part, t: progress}, ContentLength: aws.Int64(part.Size()),
		ChecksumCRC32C: &sum,
	}, withPayloadHash(unsignedPayload))
	if err != nil {
		return types.CompletedPart{}, err
	}
	return types.CompletedPart{ETag: out.ETag, PartNumber: &num, ChecksumCRC32C: &sum}, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unsignedPayload is SigV4's payload hash for a body the signature does
// not cover.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// withPayloadHash gives SigV4 the request's payload hash, hex sha256 or
// unsignedPayload, so the SDK does not read the body to compute one.
func withPayloadHash(hash string) func(*s3.Options) {
	set := middleware.FinalizeMiddlewareFunc("fwreleasePayloadHash", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, hash), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(set, middleware.Before)
		})
	}
}

// cacheControl marks versioned keys immutable; latest.json is not.
func (p *S3) cacheControl(key string) *string {
	if strings.HasSuffix(key, "/latest.json") || key == "latest.json" {
		return aws.String("no-cache")
	}
	return aws.String(immutableCache)
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".tar.gz"):
		return "application/gzip"
	case strings.HasSuffix(key, ".tar.zst"):
		return "application/zstd"
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}

func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NotFound", "NoSuchKey", "404":
			return true
		}
	}
	var nf *types.NotFound
	var nsk *types.NoSuchKey
	return errors.As(err, &nf) || errors.As(err, &nsk)
}

var (
	_ Reader      = (*S3)(nil)
	_ LatestMover = (*S3)(nil)
)

func (p *S3) Fetch(ctx context.Context, key string) (io.ReadCloser, error) {
	return p.get(ctx, p.key(key))
}

// MoveLatest updates {prefix}/latest.json with a conditional write (the
// ETag it read, or If-None-Match: * when there was none), so two releases
// racing cannot move it backwards.
func (p *S3) MoveLatest(ctx context.Context, version string, body []byte) (bool, error) {
	key := p.key("latest.json")
	in := &s3.PutObjectInput{
		Bucket: &p.Bucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), CacheControl: aws.String("no-cache"),
	}
	cur, err := p.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.Bucket, Key: &key})
	switch {
	case isNotFound(err):
		in.IfNoneMatch = aws.String("*")
	case err != nil:
		return false, fmt.Errorf("reading s3://%s/%s: %w", p.Bucket, key, err)
	default:
		data, rerr := io.ReadAll(cur.Body)
		cur.Body.Close()
		if rerr != nil {
			return false, rerr
		}
		var l Latest
		if json.Unmarshal(data, &l) == nil && !Newer(version, l.Version) {
			return false, nil
		}
		in.IfMatch = cur.ETag
	}
	if _, err := p.Client.PutObject(ctx, in); err != nil {
		if isPreconditionFailed(err) && p.holds(ctx, key, body) {
			return true, nil // a retried write whose first response was lost
		}
		return false, fmt.Errorf("moving s3://%s/%s to %s: %w", p.Bucket, key, version, err)
	}
	return true, nil
}

// holds reports whether key reads back as exactly body.
func (p *S3) holds(ctx context.Context, key string, body []byte) bool {
	r, err := p.get(ctx, key)
	if err != nil {
		return false
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, int64(len(body))+1))
	return err == nil && bytes.Equal(data, body)
}

// isPreconditionFailed recognises S3's 412: an If-None-Match or If-Match
// write that found the object already there, or changed.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}
