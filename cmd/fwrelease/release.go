package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/release"
	"github.com/runpod-workers/fwrelease/internal/target"
)

type releaseOptions struct {
	buildOptions
	publishOptions
	snapshot   bool
	allowDirty bool
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
	cmd.Flags().BoolVar(&o.allowDirty, "allow-dirty", false, "release even from uncommitted changes or a tag that is not this commit's or this version's")
	o.buildOptions.addFlags(cmd)
	o.publishOptions.addFlags(cmd)
	return cmd
}

// fullRelease builds, signs and publishes to every configured channel.
func fullRelease(ctx context.Context, g *globalOptions, cfg *config.Config, b *build.Builder, targets []target.Target, o *releaseOptions) error {
	if err := b.Source.CheckRelease(ctx); err != nil {
		if !o.allowDirty {
			return err
		}
		g.logger().Warn("releasing anyway (--allow-dirty)", "problem", err.Error())
	}
	p, err := makePublishing(ctx, g, cfg, &o.publishOptions, b.Source.Commit)
	if err != nil {
		return err
	}
	r := &release.Release{Dist: g.dist}
	if err := release.Run(ctx, g.logger(), release.Full(r, b, targets, p)); err != nil {
		return err
	}
	return printSummary(g, r)
}

// snapshotRelease publishes into dist/ only: the local channel, an OCI
// layout, and a manifest signed with an ephemeral key.
func snapshotRelease(ctx context.Context, g *globalOptions, cfg *config.Config, b *build.Builder, targets []target.Target) error {
	r := &release.Release{Dist: g.dist}
	steps, err := release.Snapshot(ctx, r, b, targets, imageSettings(g, cfg), g.logger())
	if err != nil {
		return err
	}
	if err := release.Run(ctx, g.logger(), steps); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, filepath.Join(g.dist, release.ManifestFile))
	return nil
}
