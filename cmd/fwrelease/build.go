package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/source"
	"github.com/runpod-workers/fwrelease/internal/target"
)

type buildOptions struct {
	targets []string
	noSlim  bool
	version string
}

func newBuild(g *globalOptions) *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the tarball and shard record of each target into dist/",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(o.version)
			if err != nil {
				return err
			}
			b, targets, err := makeBuilder(cmd.Context(), g, cfg, o)
			if err != nil {
				return err
			}
			built, err := b.Build(cmd.Context(), targets)
			if err != nil {
				return err
			}
			var shards []manifest.Shard
			for _, a := range built {
				shards = append(shards, a.Shard())
				if !g.json {
					fmt.Fprintln(g.stdout, a.Path)
				}
			}
			if g.json {
				data, err := manifest.Marshal(shards)
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(data)
				return err
			}
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *buildOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.targets, "target", nil, "only this target ID (repeatable)")
	f.BoolVar(&o.noSlim, "no-slim", false, "ship dependencies as installed")
	f.StringVar(&o.version, "version", "", "the release version, overriding the config")
}

// makeBuilder turns options into a Builder and the targets it should build.
func makeBuilder(ctx context.Context, g *globalOptions, cfg *config.Config, o *buildOptions) (*build.Builder, []target.Target, error) {
	targets, err := target.Select(cfg.Targets(), o.targets)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--target: %w", err)}
	}
	src, err := source.Resolve(ctx, source.Options{
		Dir: cfg.Dir, Repository: cfg.Source.Repository, Epoch: cfg.SourceDateEpoch,
		Version: cfg.Version.Literal, Exclude: []string{g.dist},
	})
	if err != nil {
		return nil, nil, err
	}
	b := &build.Builder{Config: cfg, Source: src, Dist: g.dist, NoSlim: o.noSlim, Log: g.logger(), AllowInsecure: g.allowInsecure}
	return b, targets, nil
}
