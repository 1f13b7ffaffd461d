package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/schema"
)

func newManifest(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Work with release manifests",
		Args:  args(cobra.NoArgs),
	}
	var from []string
	var out string
	merge := &cobra.Command{
		Use:   "merge",
		Short: "Merge the shards of several dist directories into one manifest",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if len(from) == 0 || out == "" {
				return usageError{errors.New("manifest merge needs --from DIR (one or more) and -o FILE")}
			}
			shards, err := manifest.ReadShards(from...)
			if err != nil {
				return err
			}
			m, err := manifest.New(shards)
			if err != nil {
				return fmt.Errorf("merging shards: %w", err)
			}
			data, err := manifest.Marshal(m)
			if err != nil {
				return err
			}
			if err := schema.ValidateManifest(data); err != nil {
				return fmt.Errorf("merging shards: %w", err)
			}
			if err := manifest.WriteFile(out, m); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, out)
			return nil
		},
	}
	merge.Flags().StringArrayVar(&from, "from", nil, "a dist directory with shards/ (repeatable)")
	merge.Flags().StringVarP(&out, "output", "o", "", "the manifest to write")
	cmd.AddCommand(merge)
	return cmd
}
