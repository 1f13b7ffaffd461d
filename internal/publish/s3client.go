package publish

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runpod-workers/fwrelease/internal/httpretry"
	"github.com/runpod-workers/fwrelease/internal/insecure"
)

// S3Options are the config's publish.s3 settings.
type S3Options struct {
	Bucket        string
	Prefix        string
	Region        string
	Endpoint      string // custom endpoint (MinIO, R2, versitygw); empty: AWS
	PathStyle     bool
	PublicURL     string
	AllowInsecure bool // plain http, loopback only
}

// NewS3 makes the S3 channel with credentials from the SDK's standard chain
// (environment, shared files, SSO, IMDS, web identity).
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Endpoint != "" {
		if err := insecure.Check(o.Endpoint, o.AllowInsecure); err != nil {
			return nil, fmt.Errorf("publish.s3.endpoint: %w", err)
		}
	}
	// The SDK's buildable client, not a plain *http.Client: with
	// AWS_CA_BUNDLE set, LoadDefaultConfig must be able to add the bundle.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 16
	})
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	cfg.HTTPClient = httpretry.Client{Next: cfg.HTTPClient}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = &o.Endpoint
		}
		so.UsePathStyle = o.PathStyle
	})
	public := o.PublicURL
	if public == "" {
		public = defaultPublicURL(o, region)
	}
	return &S3{Client: client, Bucket: o.Bucket, Prefix: strings.Trim(o.Prefix, "/"), PublicURL: public}, nil
}

func defaultPublicURL(o S3Options, region string) string {
	if o.Endpoint == "" {
		return fmt.Sprintf("https://%s.s3.%s.amazonaws.com", o.Bucket, region)
	}
	base := strings.TrimRight(o.Endpoint, "/")
	if o.PathStyle {
		return base + "/" + o.Bucket
	}
	u, err := url.Parse(base)
	if err != nil {
		return base + "/" + o.Bucket
	}
	u.Host = o.Bucket + "." + u.Host
	return u.String()
}
