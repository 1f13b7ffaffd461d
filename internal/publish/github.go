package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/google/go-github/v75/github"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/httpretry"
	"github.com/runpod-workers/fwrelease/internal/insecure"
)

// MaxGitHubAsset is GitHub's limit on one release asset.
const MaxGitHubAsset = 2 << 30

// GitHub publishes to the release of tag v{version}: created as a draft,
// assets uploaded and compared by digest, made public by Finalize after
// everything else is in place.
type GitHub struct {
	Client      *github.Client
	Owner, Repo string
	DownloadURL string // base of browser download URLs, "https://github.com"
	Commit      string // target commit of a new release
	Replace     bool
	Log         *slog.Logger
	Retries     int           // default 6
	Backoff     time.Duration // first retry delay; default 1s
	MaxWait     time.Duration // longest wait for a rate limit; default 15m

	releases map[string]*github.RepositoryRelease // by tag
	// Uploaded counts asset bytes sent.
	Uploaded int64
}

var (
	_ Publisher   = (*GitHub)(nil)
	_ Reader      = (*GitHub)(nil)
	_ Finalizer   = (*GitHub)(nil)
	_ Preflighter = (*GitHub)(nil)
)

// GitHubOptions are the config's publish.github settings.
type GitHubOptions struct {
	Owner, Repo       string
	APIURL, UploadURL string // GitHub Enterprise; empty: github.com
	Token             string
	Commit            string
	AllowInsecure     bool
	HTTPClient        *http.Client
}

// NewGitHub makes the channel. The token is only ever put in the
// Authorization header.
func NewGitHub(o GitHubOptions) (*GitHub, error) {
	if o.Token == "" {
		return nil, errors.New("publishing to GitHub needs a token in GITHUB_TOKEN")
	}
	c := github.NewClient(retrying(o.HTTPClient)).WithAuthToken(o.Token)
	download := "https://github.com"
	if o.APIURL != "" {
		for _, u := range []string{o.APIURL, o.UploadURL} {
			if err := insecure.Check(u, o.AllowInsecure); err != nil {
				return nil, fmt.Errorf("publish.github: %w", err)
			}
		}
		var err error
		if c, err = c.WithEnterpriseURLs(o.APIURL, o.UploadURL); err != nil {
			return nil, fmt.Errorf("publish.github: %w", err)
		}
		u, _ := url.Parse(o.APIURL)
		download = u.Scheme + "://" + u.Host
	}
	return &GitHub{Client: c, Owner: o.Owner, Repo: o.Repo, DownloadURL: download, Commit: o.Commit}, nil
}

// retrying is client, or the default one, retrying idempotent requests
// whose response is cut.
func retrying(client *http.Client) *http.Client {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = httpretry.Transport{Next: next}
	return c
}

func (g *GitHub) Name() string { return "github" }

// URL is the asset's download URL once the release is published.
func (g *GitHub) URL(key string) string {
	tag, file := path.Split(key)
	return fmt.Sprintf("%s/%s/%s/releases/download/%s/%s", g.DownloadURL, g.Owner, g.Repo, strings.Trim(tag, "/"), url.PathEscape(file))
}

func (g *GitHub) Preflight(objs []artifact.Artifact) error {
	for _, o := range objs {
		if o.Size > MaxGitHubAsset {
			return fmt.Errorf("%s is %d bytes, over GitHub's 2 GiB limit for a release asset; publish it to S3 or OCI instead (--to s3, --to oci)", o.Path, o.Size)
		}
	}
	return nil
}

func (g *GitHub) Publish(ctx context.Context, obj artifact.Artifact) (artifact.Location, error) {
	u, err := g.publish(ctx, obj)
	if err != nil {
		return artifact.Location{}, err
	}
	return artifact.Location{Channel: g.Name(), URL: u}, nil
}

func (g *GitHub) publish(ctx context.Context, obj artifact.Artifact) (string, error) {
	if err := g.Preflight([]artifact.Artifact{obj}); err != nil {
		return "", err
	}
	tag, file := obj.Tag(), obj.File
	rel, err := g.release(ctx, tag)
	if err != nil {
		return "", err
	}
	where := fmt.Sprintf("GitHub release %s of %s/%s", tag, g.Owner, g.Repo)
	if asset, err := g.asset(ctx, rel, file); err != nil {
		return "", err
	} else if asset != nil {
		have, err := g.assetSHA256(ctx, asset)
		if err != nil {
			return "", err
		}
		switch {
		case have == obj.SHA256:
			return g.URL(obj.Key()), nil
		case !g.Replace:
			return "", fmt.Errorf("publishing %s to %s: %w (there: sha256 %s, ours: sha256 %s); pass --replace to overwrite", file, where, ErrExists, have, obj.SHA256)
		}
		if err := g.call(ctx, "deleting asset "+file, func() (*github.Response, error) {
			return g.Client.Repositories.DeleteReleaseAsset(ctx, g.Owner, g.Repo, asset.GetID())
		}); err != nil {
			return "", err
		}
	}
	if err := g.upload(ctx, rel, file, obj); err != nil {
		return "", fmt.Errorf("uploading %s to %s: %w", file, where, err)
	}
	g.logger().Info("uploaded", "asset", file, "release", tag, "bytes", obj.Size)
	return g.URL(obj.Key()), nil
}

// upload sends the asset; a 422 already_exists after a retry means an
// earlier attempt landed, which counts if its digest is ours.
func (g *GitHub) upload(ctx context.Context, rel *github.RepositoryRelease, file string, obj artifact.Artifact) error {
	err := g.call(ctx, "uploading "+file, func() (*github.Response, error) {
		f, err := os.Open(obj.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		_, resp, err := g.Client.Repositories.UploadReleaseAsset(ctx, g.Owner, g.Repo, rel.GetID(), &github.UploadOptions{Name: file}, f)
		return resp, err
	})
	if err == nil {
		g.Uploaded += obj.Size
		return nil
	}
	var ge *github.ErrorResponse
	if !errors.As(err, &ge) || ge.Response == nil || ge.Response.StatusCode != http.StatusUnprocessableEntity {
		return err
	}
	asset, aerr := g.asset(ctx, rel, file)
	if aerr != nil || asset == nil {
		return errors.Join(err, aerr)
	}
	have, herr := g.assetSHA256(ctx, asset)
	if herr != nil || have != obj.SHA256 {
		return errors.Join(fmt.Errorf("an asset %s appeared with sha256 %s, not ours (%s)", file, have, obj.SHA256), herr)
	}
	g.Uploaded += obj.Size
	return nil
}

// release finds the release of tag, drafts included (which the
// releases/tags endpoint does not show), or creates it as a draft.
func (g *GitHub) release(ctx context.Context, tag string) (*github.RepositoryRelease, error) {
	if r, ok := g.releases[tag]; ok {
		return r, nil
	}
	if g.releases == nil {
		g.releases = map[string]*github.RepositoryRelease{}
	}
	if r, err := g.findRelease(ctx, tag); err != nil || r != nil {
		return r, err
	}
	var created *github.RepositoryRelease
	err := g.call(ctx, "creating release "+tag, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		created, resp, err = g.Client.Repositories.CreateRelease(ctx, g.Owner, g.Repo, &github.RepositoryRelease{
			TagName: github.Ptr(tag), Name: github.Ptr(tag), Draft: github.Ptr(true), TargetCommitish: nonEmpty(g.Commit),
		})
		return resp, err
	})
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusUnprocessableEntity {
		// After a retry, the tag's release is there: the earlier attempt
		// created it.
		if r, ferr := g.findRelease(ctx, tag); ferr == nil && r != nil {
			return r, nil
		}
	}
	if err != nil {
		return nil, err
	}
	g.releases[tag] = created
	return created, nil
}

// findRelease looks for the release of tag among all, drafts included.
func (g *GitHub) findRelease(ctx context.Context, tag string) (*github.RepositoryRelease, error) {
	opts := &github.ListOptions{PerPage: 100}
	for {
		var page []*github.RepositoryRelease
		var resp *github.Response
		err := g.call(ctx, "listing releases", func() (*github.Response, error) {
			var err error
			page, resp, err = g.Client.Repositories.ListReleases(ctx, g.Owner, g.Repo, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if r.GetTagName() == tag {
				g.releases[tag] = r
				return r, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

func (g *GitHub) asset(ctx context.Context, rel *github.RepositoryRelease, name string) (*github.ReleaseAsset, error) {
	opts := &github.ListOptions{PerPage: 100}
	for {
		var page []*github.ReleaseAsset
		var resp *github.Response
		err := g.call(ctx, "listing assets", func() (*github.Response, error) {
			var err error
			page, resp, err = g.Client.Repositories.ListReleaseAssets(ctx, g.Owner, g.Repo, rel.GetID(), opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			if a.GetName() == name {
				if a.GetState() != "" && a.GetState() != "uploaded" {
					// An upload that never finished: remove it and start over.
					err := g.call(ctx, "deleting incomplete asset "+name, func() (*github.Response, error) {
						return g.Client.Repositories.DeleteReleaseAsset(ctx, g.Owner, g.Repo, a.GetID())
					})
					return nil, err
				}
				return a, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

// assetSHA256 is the digest GitHub reports, or the hash of the download.
func (g *GitHub) assetSHA256(ctx context.Context, a *github.ReleaseAsset) (string, error) {
	if d, ok := strings.CutPrefix(a.GetDigest(), "sha256:"); ok {
		return d, nil
	}
	var sum string
	err := g.call(ctx, "downloading asset "+a.GetName(), func() (*github.Response, error) {
		rc, _, err := g.Client.Repositories.DownloadReleaseAsset(ctx, g.Owner, g.Repo, a.GetID(), http.DefaultClient)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			return nil, err
		}
		sum = hex.EncodeToString(h.Sum(nil))
		return nil, nil
	})
	return sum, err
}

// Finalize publishes the draft: the last step, after every asset is there.
func (g *GitHub) Finalize(ctx context.Context, version string) error {
	tag := "v" + version
	rel, err := g.release(ctx, tag)
	if err != nil {
		return err
	}
	if !rel.GetDraft() {
		return nil
	}
	return g.call(ctx, "publishing release "+tag, func() (*github.Response, error) {
		r, resp, err := g.Client.Repositories.EditRelease(ctx, g.Owner, g.Repo, rel.GetID(), &github.RepositoryRelease{Draft: github.Ptr(false)})
		if err == nil {
			g.releases[tag] = r
		}
		return resp, err
	})
}

// call runs one API request with retries: on 5xx, on network errors, and
// on primary and secondary rate limits, waiting as long as GitHub asks.
func (g *GitHub) call(ctx context.Context, what string, fn func() (*github.Response, error)) error {
	retries, backoff := g.Retries, g.Backoff
	if retries == 0 {
		retries = 6
	}
	if backoff == 0 {
		backoff = time.Second
	}
	for attempt := 0; ; attempt++ {
		resp, err := fn()
		if err == nil {
			return nil
		}
		wait, retry := g.retryAfter(resp, err, backoff<<attempt)
		if !retry || attempt >= retries || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		g.logger().Warn("GitHub request failed; retrying", "request", what, "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (g *GitHub) retryAfter(resp *github.Response, err error, backoff time.Duration) (time.Duration, bool) {
	maxWait := g.MaxWait
	if maxWait == 0 {
		maxWait = 15 * time.Minute
	}
	var abuse *github.AbuseRateLimitError
	var rate *github.RateLimitError
	switch {
	case errors.As(err, &abuse):
		if abuse.RetryAfter != nil {
			return min(*abuse.RetryAfter, maxWait), true
		}
		return min(time.Minute, maxWait), true
	case errors.As(err, &rate):
		return min(max(time.Until(rate.Rate.Reset.Time), time.Second), maxWait), true
	case resp != nil && resp.Response != nil && resp.StatusCode/100 == 2:
		return backoff, true // a success whose body was cut on the way
	case resp != nil && resp.Response != nil:
		code := resp.StatusCode
		if ra := resp.Header.Get("Retry-After"); ra != "" && (code == 403 || code == 429 || code >= 500) {
			if d, perr := time.ParseDuration(ra + "s"); perr == nil {
				return min(d, maxWait), true
			}
		}
		return backoff, code >= 500 || code == 429
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return 0, false
	}
	var ge *github.ErrorResponse
	if errors.As(err, &ge) {
		return 0, false
	}
	return backoff, true // a network error: no response at all
}

func (g *GitHub) logger() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return g.Log
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Fetch downloads the asset named by key ("v1.2.0/file") through the API,
// which works for drafts too.
func (g *GitHub) Fetch(ctx context.Context, key string) (io.ReadCloser, error) {
	tag, file := path.Split(key)
	rel, err := g.release(ctx, strings.Trim(tag, "/"))
	if err != nil {
		return nil, err
	}
	a, err := g.asset(ctx, rel, file)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("no asset %s in release %s", file, rel.GetTagName())
	}
	rc, _, err := g.Client.Repositories.DownloadReleaseAsset(ctx, g.Owner, g.Repo, a.GetID(), http.DefaultClient)
	return rc, err
}
