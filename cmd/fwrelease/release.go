package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/release"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/target"
)

type releaseOptions struct {
	buildOptions
	publishOptions
	snapshot bool
}

func newRelease(g *globalOptions) *cobra.Command {
	o := &releaseOptions{}
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Build, sign and publish every target to every channel in the config",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(o.version)
			if err != nil {
				return err
			}
			b, targets, err := makeBuilder(cmd.Context(), g, cfg, &o.buildOptions)
			if err != nil {
				return err
			}
			if !o.snapshot {
				return fullRelease(cmd.Context(), g, cfg, b, targets, o)
			}
			return snapshotRelease(cmd.Context(), g, cfg, b, targets)
		},
	}
	cmd.Flags().BoolVar(&o.snapshot, "snapshot", false, "publish nowhere remote: build, sign with an ephemeral key, write dist/")
	o.buildOptions.addFlags(cmd)
	o.publishOptions.addFlags(cmd)
	return cmd
}

// fullRelease builds, signs and publishes to every configured channel.
func fullRelease(ctx context.Context, g *globalOptions, cfg *config.Config, b *build.Builder, targets []target.Target, o *releaseOptions) error {
	signer, err := makeSigner(ctx, g, &o.signOptions)
	if err != nil {
		return err
	}
	r := &release.Release{Dist: g.dist}
	steps := []release.Step{
		&release.BuildStep{Builder: b, Targets: targets, Release: r},
		&release.SignStep{Signer: signer, Release: r},
	}
	more, err := publishSteps(ctx, g, cfg, r, signer, &o.publishOptions, b.Source.Commit)
	if err != nil {
		return err
	}
	if err := release.Run(ctx, g.logger(), append(steps, more...)); err != nil {
		return err
	}
	return printSummary(g, r)
}

// snapshotRelease publishes into dist/ only: the local channel, an OCI
// layout, and a manifest signed with an ephemeral key. It starts those trees
// afresh, since that key signs differently every run.
func snapshotRelease(ctx context.Context, g *globalOptions, cfg *config.Config, b *build.Builder, targets []target.Target) error {
	localDir, ociDir := filepath.Join(g.dist, "local"), filepath.Join(g.dist, "oci")
	for _, d := range []string{localDir, ociDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	signer, err := snapshotSigner(ctx, g.dist)
	if err != nil {
		return err
	}
	layout, err := publish.NewOCILayout(ociDir)
	if err != nil {
		return err
	}
	local := &publish.Local{Dir: localDir}
	r := &release.Release{Dist: g.dist}
	steps := []release.Step{
		&release.BuildStep{Builder: b, Targets: targets, Release: r},
		&release.SignStep{Signer: signer, Release: r},
		&release.PublishStep{Publisher: local, Release: r},
		&release.PublishStep{Publisher: local, Release: r, Signatures: true},
		&release.OCIStep{OCI: layout, Release: r, Source: sourceURL(cfg)},
		&release.ManifestStep{Release: r, Signer: signer, Publishers: []publish.Publisher{local}},
		&release.LatestStep{Release: r, Publishers: []publish.Publisher{local}},
	}
	if err := release.Run(ctx, g.logger(), steps); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, filepath.Join(g.dist, release.ManifestFile))
	return nil
}

// snapshotSigner makes an ephemeral key and writes its public half to
// dist/snapshot.pub, so the snapshot can be verified like a release.
func snapshotSigner(ctx context.Context, dist string) (*sign.Signer, error) {
	sv, err := sign.Ephemeral()
	if err != nil {
		return nil, err
	}
	s, err := sign.New(ctx, sv)
	if err != nil {
		return nil, err
	}
	pub, err := s.PublicKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dist, "snapshot.pub"), pub, 0o644); err != nil {
		return nil, err
	}
	return s, nil
}
