package publish

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/config"
)

// Settings are what every channel is made with beside its config section:
// the command's flags and what the release knows.
type Settings struct {
	Dist          string // the local channel's default is Dist/local
	Replace       bool
	AllowInsecure bool
	Commit        string // GitHub: the commit a new release's tag points at
	Source        string // OCI: "https://github.com/owner/repo", for the source annotation
	Log           *slog.Logger
	Progress      Progress
}

// channel is one row of the table: whether the config has the channel's
// section, and how to make it from there.
type channel struct {
	name       string
	configured func(*config.Publish) bool
	open       func(ctx context.Context, c *config.Publish, s Settings) (Publisher, error)
}

// channels is every channel fwrelease knows, in the order a release
// publishes to them. A new channel is its file and one line here.
var channels = []channel{
	{"local", func(c *config.Publish) bool { return c.Local != nil }, openLocal},
	{"s3", func(c *config.Publish) bool { return c.S3 != nil }, openS3},
	{"github", func(c *config.Publish) bool { return c.GitHub != nil }, openGitHub},
	{"oci", func(c *config.Publish) bool { return c.OCI != nil }, openOCI},
}

// Names lists the channels fwrelease knows, in publishing order.
func Names() []string {
	names := make([]string, len(channels))
	for i, ch := range channels {
		names[i] = ch.name
	}
	return names
}

// Open makes the channels named (none: every configured one), in the
// table's order whatever the order of names.
func Open(ctx context.Context, cfg *config.Publish, names []string, s Settings) ([]Publisher, error) {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	want, err := wanted(cfg, names)
	if err != nil {
		return nil, err
	}
	var pubs []Publisher
	for _, ch := range channels {
		if !want[ch.name] {
			continue
		}
		p, err := ch.open(ctx, cfg, s)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, p)
	}
	return pubs, nil
}

// UnknownChannelError is a --to naming no channel: a usage error.
type UnknownChannelError struct{ Name string }

func (e UnknownChannelError) Error() string {
	return fmt.Sprintf("--to %s: not a channel (%s)", e.Name, strings.Join(Names(), ", "))
}

// wanted checks names against the table and the config.
func wanted(cfg *config.Publish, names []string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, name := range names {
		ch, ok := find(name)
		switch {
		case !ok:
			return nil, UnknownChannelError{name}
		case !ch.configured(cfg):
			return nil, fmt.Errorf("--to %s: the config has no publish.%s section", name, name)
		}
		want[name] = true
	}
	if len(names) == 0 {
		for _, ch := range channels {
			want[ch.name] = ch.configured(cfg)
		}
	}
	for _, ok := range want {
		if ok {
			return want, nil
		}
	}
	return nil, errNoChannels()
}

// errNoChannels is what Open says when the config configures nothing.
func errNoChannels() error {
	sections := make([]string, len(channels))
	for i, name := range Names() {
		sections[i] = "publish." + name
	}
	return fmt.Errorf("no channels: the config's publish section names none; add one of %s", strings.Join(sections, ", "))
}

func find(name string) (channel, bool) {
	for _, ch := range channels {
		if ch.name == name {
			return ch, true
		}
	}
	return channel{}, false
}

func openLocal(_ context.Context, c *config.Publish, s Settings) (Publisher, error) {
	dir := c.Local.Dir
	if dir == "" {
		dir = filepath.Join(s.Dist, "local")
	}
	return &Local{Dir: dir, Replace: s.Replace}, nil
}

func openS3(ctx context.Context, c *config.Publish, s Settings) (Publisher, error) {
	p, err := NewS3(ctx, S3Options{
		Bucket: c.S3.Bucket, Prefix: c.S3.Prefix, Region: c.S3.Region, Endpoint: c.S3.Endpoint,
		PathStyle: c.S3.PathStyle, PublicURL: c.S3.PublicURL, AllowInsecure: s.AllowInsecure,
	})
	if err != nil {
		return nil, err
	}
	p.Replace, p.Log, p.Progress = s.Replace, s.Log, s.Progress
	return p, nil
}

func openGitHub(_ context.Context, c *config.Publish, s Settings) (Publisher, error) {
	g, err := NewGitHub(GitHubOptions{
		Owner: c.GitHub.Owner, Repo: c.GitHub.Repo, APIURL: c.GitHub.APIURL, UploadURL: c.GitHub.UploadURL,
		Token: os.Getenv("GITHUB_TOKEN"), Commit: s.Commit, AllowInsecure: s.AllowInsecure,
	})
	if err != nil {
		return nil, err
	}
	g.Replace, g.Log = s.Replace, s.Log
	return g, nil
}

func openOCI(_ context.Context, c *config.Publish, s Settings) (Publisher, error) {
	o, err := NewOCIRegistry(c.OCI.Repository, c.OCI.PlainHTTP, s.AllowInsecure)
	if err != nil {
		return nil, err
	}
	o.Replace, o.Log, o.Source = s.Replace, s.Log, s.Source
	return o, nil
}
