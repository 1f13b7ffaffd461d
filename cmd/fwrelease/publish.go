package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/release"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

// Where publishing's flag help comes from: the channel table.
var channelList = strings.Join(publish.Names(), ", ")

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
			r, err := release.Load(g.dist, o.from)
			if err != nil {
				return err
			}
			p, err := makePublishing(ctx, g, cfg, o, r.Artifacts[0].Release.Source.Commit)
			if err != nil {
				return err
			}
			if err := release.Run(ctx, g.logger(), release.PublishOnly(r, p)); err != nil {
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
	f.StringArrayVar(&o.to, "to", nil, "publish to this channel only: "+channelList+" (repeatable; default: every channel in the config)")
	f.BoolVar(&o.replace, "replace", false, "overwrite a published file whose bytes differ")
	f.BoolVar(&o.dryRun, "dry-run", false, "say what would be published, publish nothing")
	o.signOptions.addFlags(cmd)
}

// makePublishing turns the options into what the publishing steps are
// handed: the channels from the config's table, the signer, and the
// checker that lets a re-run keep a published signature.
func makePublishing(ctx context.Context, g *globalOptions, cfg *config.Config, o *publishOptions, commit string) (release.Publishing, error) {
	pubs, err := publish.Open(ctx, &cfg.Publish, o.to, publish.Settings{
		Dist: g.dist, Replace: o.replace, AllowInsecure: g.allowInsecure, Commit: commit,
		Source: sourceURL(cfg), Log: g.logger(), Progress: g.progressBar(),
	})
	var unknown publish.UnknownChannelError
	if errors.As(err, &unknown) {
		return release.Publishing{}, usageError{err}
	}
	if err != nil {
		return release.Publishing{}, err
	}
	signer, err := makeSigner(ctx, g, &o.signOptions, cfg)
	if err != nil {
		return release.Publishing{}, err
	}
	set := publish.NewSet(g.logger(), pubs...)
	if o.dryRun {
		set = set.DryRun(g.logger().Info)
	}
	verifier, err := convergenceChecker(signer)
	if err != nil {
		return release.Publishing{}, err
	}
	return release.Publishing{Channels: set, Signer: signer, Verifier: verifier, Images: imageSettings(g, cfg)}, nil
}

// imageSettings are the config's image bases and what the images step
// may reach.
func imageSettings(g *globalOptions, cfg *config.Config) release.ImageSettings {
	return release.ImageSettings{Bases: cfg.Images.Bases, Source: sourceURL(cfg), AllowInsecure: g.allowInsecure}
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

// sourceURL is the repository's web address, for the OCI source annotation.
func sourceURL(cfg *config.Config) string {
	if cfg.Source.Repository == "" {
		return ""
	}
	return "https://github.com/" + cfg.Source.Repository
}
