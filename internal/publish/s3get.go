package publish

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// get streams an object and, when the body is cut off mid-way (which
// neither net/http nor the SDK retries), asks for the rest with a Range
// request pinned to the same ETag.
func (p *S3) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := p.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.Bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	return &s3Body{ctx: ctx, p: p, key: key, body: out.Body, etag: aws.ToString(out.ETag)}, nil
}

type s3Body struct {
	ctx     context.Context
	p       *S3
	key     string
	body    io.ReadCloser
	etag    string
	read    int64
	resumes int
}

func (b *s3Body) Read(buf []byte) (int, error) {
	n, err := b.body.Read(buf)
	b.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) || b.ctx.Err() != nil || b.resumes >= 3 || b.etag == "" {
		return n, err
	}
	b.resumes++
	b.body.Close()
	out, gerr := b.p.Client.GetObject(b.ctx, &s3.GetObjectInput{
		Bucket: &b.p.Bucket, Key: &b.key,
		Range:   aws.String(fmt.Sprintf("bytes=%d-", b.read)),
		IfMatch: aws.String(b.etag),
	})
	if gerr != nil {
		return n, fmt.Errorf("%w (resuming s3://%s/%s at byte %d: %v)", err, b.p.Bucket, b.key, b.read, gerr)
	}
	b.body = out.Body
	if n > 0 {
		return n, nil
	}
	return b.Read(buf)
}

func (b *s3Body) Close() error { return b.body.Close() }
