package publish

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/resume"
)

// get streams an object; a body cut off mid-way goes on with a Range
// request pinned to the same ETag.
func (p *S3) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := p.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.Bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	r := &resume.Reader{Ctx: ctx, Body: out.Body}
	if etag := aws.ToString(out.ETag); etag != "" {
		r.Reopen = func(ctx context.Context, off int64) (io.ReadCloser, error) {
			rest, err := p.Client.GetObject(ctx, &s3.GetObjectInput{
				Bucket: &p.Bucket, Key: &key,
				Range:   aws.String(fmt.Sprintf("bytes=%d-", off)),
				IfMatch: aws.String(etag),
			})
			if err != nil {
				return nil, err
			}
			return rest.Body, nil
		}
	}
	return r, nil
}
