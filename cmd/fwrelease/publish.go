package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/release"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

type publishOptions struct {
	signOptions
	to      []string
	from    []string
	replace bool
	dryRun  bool
}

func newPublish(g *globalOptions) *cobra.Command {
	o := &publishOptions{}
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish built (and signed) tarballs, their signatures and the signed manifest to the configured channels",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig("")
			if err != nil {
				return err
			}
			from := o.from
			if len(from) == 0 {
				from = []string{g.dist}
			}
			if err := os.MkdirAll(g.dist, 0o755); err != nil {
				return err
			}
			r := &release.Release{Dist: g.dist, Dirs: map[string]string{}}
			for _, dir := range from {
				shards, err := manifest.ReadShards(dir)
				if err != nil {
					return err
				}
				for _, s := range shards {
					r.Dirs[s.Target.ID] = dir
				}
				r.Shards = append(r.Shards, shards...)
			}
			// Shards of different releases, or one target built twice
			// differently, are refused before anything is uploaded.
			if _, err := manifest.New(r.Shards); err != nil {
				return fmt.Errorf("merging the shards of %v: %w", from, err)
			}
			signer, err := makeSigner(ctx, g, &o.signOptions)
			if err != nil {
				return err
			}
			steps, err := publishSteps(ctx, g, cfg, r, signer, o, r.Shards[0].Release.Source.Commit)
			if err != nil {
				return err
			}
			steps = append([]release.Step{&release.SignStep{Signer: signer, Release: r, OnlyUnsigned: true}}, steps...)
			if err := release.Run(ctx, g.logger(), steps); err != nil {
				return err
			}
			return printSummary(g, r)
		},
	}
	cmd.Flags().StringArrayVar(&o.from, "from", nil, "a dist directory with shards/ and their tarballs (repeatable; default: --dist)")
	o.addFlags(cmd)
	return cmd
}

// addFlags adds the flags publish and release share, signing's included.
func (o *publishOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.to, "to", nil, "publish to this channel only: local, s3, github, oci (repeatable; default: every channel in the config)")
	f.BoolVar(&o.replace, "replace", false, "overwrite a published file whose bytes differ")
	f.BoolVar(&o.dryRun, "dry-run", false, "say what would be published, publish nothing")
	o.signOptions.addFlags(cmd)
}

// publishSteps are the ordered steps after signing: artifacts on every
// channel, then signatures, then the manifest, then latest.
func publishSteps(ctx context.Context, g *globalOptions, cfg *config.Config, r *release.Release, signer *sign.Signer, o *publishOptions, commit string) ([]release.Step, error) {
	pubs, oci, err := makePublishers(ctx, g, cfg, o.to, o.replace, commit)
	if err != nil {
		return nil, err
	}
	if o.dryRun {
		for i, p := range pubs {
			pubs[i] = &publish.DryRun{Inner: p, Log: g.logger().Info}
		}
	}
	verifier, err := convergenceChecker(signer)
	if err != nil {
		return nil, err
	}
	steps := []release.Step{&release.PreflightStep{Publishers: pubs, Release: r}}
	for _, p := range pubs {
		steps = append(steps, &release.PublishStep{Publisher: p, Release: r})
	}
	for _, p := range pubs {
		steps = append(steps, &release.PublishStep{Publisher: p, Release: r, Signatures: true, Verifier: verifier})
	}
	if oci != nil {
		if o.dryRun {
			g.logger().Info("would push OCI artifacts", "repository", oci.Repository)
		} else {
			steps = append(steps, &release.OCIStep{OCI: oci, Release: r, Source: sourceURL(cfg)})
		}
	}
	steps = append(steps, &release.ManifestStep{Release: r, Signer: signer, Verifier: verifier, Publishers: pubs})
	if !o.dryRun {
		steps = append(steps,
			&release.FinalizeStep{Release: r, Publishers: pubs},
			&release.LatestStep{Release: r, Publishers: pubs, Log: g.logger()})
	}
	return steps, nil
}

// makePublishers builds the channels named in to (default: all configured):
// the file channels, and the OCI registry, which is not a file store.
func makePublishers(ctx context.Context, g *globalOptions, cfg *config.Config, to []string, replace bool, commit string) ([]publish.Publisher, *publish.OCI, error) {
	configured := map[string]bool{
		"local": cfg.Publish.Local != nil, "s3": cfg.Publish.S3 != nil,
		"github": cfg.Publish.GitHub != nil, "oci": cfg.Publish.OCI != nil,
	}
	if len(to) == 0 {
		for _, name := range []string{"local", "s3", "github", "oci"} {
			if configured[name] {
				to = append(to, name)
			}
		}
	}
	if len(to) == 0 {
		return nil, nil, errors.New("no channels: the config's publish section names none; add publish.local, publish.s3 or publish.oci")
	}
	var pubs []publish.Publisher
	var oci *publish.OCI
	for _, name := range to {
		known, ok := configured[name]
		switch {
		case !ok:
			return nil, nil, usageError{fmt.Errorf("--to %s: not a channel (local, s3, github, oci)", name)}
		case !known:
			return nil, nil, fmt.Errorf("--to %s: the config has no publish.%s section", name, name)
		}
		switch name {
		case "local":
			dir := cfg.Publish.Local.Dir
			if dir == "" {
				dir = filepath.Join(g.dist, "local")
			}
			pubs = append(pubs, &publish.Local{Dir: dir, Replace: replace})
		case "s3":
			c := cfg.Publish.S3
			p, err := publish.NewS3(ctx, publish.S3Options{
				Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint,
				PathStyle: c.PathStyle, PublicURL: c.PublicURL, AllowInsecure: g.allowInsecure,
			})
			if err != nil {
				return nil, nil, err
			}
			p.Replace, p.Log, p.Progress = replace, g.logger(), g.progressBar()
			pubs = append(pubs, p)
		case "github":
			c := cfg.Publish.GitHub
			gh, err := publish.NewGitHub(publish.GitHubOptions{
				Owner: c.Owner, Repo: c.Repo, APIURL: c.APIURL, UploadURL: c.UploadURL,
				Token: os.Getenv("GITHUB_TOKEN"), Commit: commit, AllowInsecure: g.allowInsecure,
			})
			if err != nil {
				return nil, nil, err
			}
			gh.Replace, gh.Log = replace, g.logger()
			pubs = append(pubs, gh)
		case "oci":
			o, err := publish.NewOCIRegistry(cfg.Publish.OCI.Repository, cfg.Publish.OCI.PlainHTTP, g.allowInsecure)
			if err != nil {
				return nil, nil, err
			}
			o.Replace = replace
			oci = o
		default:
			return nil, nil, fmt.Errorf("the %s channel is not implemented in this version of fwrelease; publish with --to local, s3 or oci", name)
		}
	}
	return pubs, oci, nil
}

func sourceURL(cfg *config.Config) string {
	if cfg.Source.Repository == "" {
		return ""
	}
	return "https://github.com/" + cfg.Source.Repository
}

// printSummary prints, per target, the size, digest and URLs: what a human
// reads at the end of a CI log.
func printSummary(g *globalOptions, r *release.Release) error {
	if r.Manifest == nil {
		return nil
	}
	if g.json {
		data, err := manifest.Marshal(r.Manifest)
		if err != nil {
			return err
		}
		_, err = g.stdout.Write(data)
		return err
	}
	fmt.Fprintf(g.stdout, "%s %s (%s)\n", r.Manifest.Name, r.Manifest.Version, filepath.Join(r.Dist, release.ManifestFile))
	for _, a := range r.Manifest.Artifacts {
		fmt.Fprintf(g.stdout, "  %s  %d bytes  sha256:%s\n", a.Target.ID, a.Size, a.SHA256)
		for _, u := range a.URLs {
			fmt.Fprintf(g.stdout, "    %s\n", u)
		}
	}
	return nil
}

// convergenceChecker says which already-published bundles a re-run keeps:
// those valid for our key, or, keyless, those over the same digest.
func convergenceChecker(signer *sign.Signer) (release.BundleChecker, error) {
	if signer.Keyless() {
		return sign.DigestMatcher{}, nil
	}
	pubPEM, err := signer.PublicKeyPEM()
	if err != nil {
		return nil, err
	}
	return sign.NewKeyVerifier(pubPEM)
}
