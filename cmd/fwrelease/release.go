package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/release"
)

type releaseOptions struct {
	buildOptions
	snapshot bool
}

func newRelease(g *globalOptions) *cobra.Command {
	o := &releaseOptions{}
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Build, sign and publish every target to every channel in the config",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.snapshot {
				return errors.New("only `release --snapshot` is available in this version; publishing to remote channels is not implemented yet")
			}
			cfg, err := g.loadConfig(o.version)
			if err != nil {
				return err
			}
			b, targets, err := makeBuilder(cmd.Context(), g, cfg, &o.buildOptions)
			if err != nil {
				return err
			}
			localDir := filepath.Join(g.dist, "local")
			if cfg.Publish.Local != nil && cfg.Publish.Local.Dir != "" {
				localDir = cfg.Publish.Local.Dir
			}
			r := &release.Release{Dist: g.dist}
			steps := []release.Step{
				&release.BuildStep{Builder: b, Targets: targets, Release: r},
				&release.PublishStep{Publisher: &publish.Local{Dir: localDir}, Release: r},
				&release.ManifestStep{Release: r},
			}
			if err := release.Run(cmd.Context(), g.logger(), steps); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, filepath.Join(g.dist, "manifest.json"))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.snapshot, "snapshot", false, "publish nowhere remote: build, sign with an ephemeral key, write dist/")
	f.StringArrayVar(&o.targets, "target", nil, "release only this target ID (repeatable)")
	f.BoolVar(&o.noSlim, "no-slim", false, "ship dependencies as installed")
	f.StringVar(&o.version, "version", "", "the release version, overriding the config")
	return cmd
}
