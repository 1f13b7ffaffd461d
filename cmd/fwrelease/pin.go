package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/pin"
	"github.com/runpod-workers/fwrelease/internal/verify"
)

type pinOptions struct {
	verifyOptions
	manifest string
	sdk      string
	check    bool
}

func newPin(g *globalOptions) *cobra.Command {
	o := &pinOptions{}
	cmd := &cobra.Command{
		Use:   "pin --manifest M --sdk DIR",
		Short: "Verify a release and pin the SDK to it (FLASH_WORKER_VERSION and the per-target URL table)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.manifest == "" || o.sdk == "" {
				return usageError{errors.New("pin needs --manifest and --sdk")}
			}
			v, err := makeVerifier(&o.verifyOptions)
			if err != nil {
				return err
			}
			// Pinning verifies every artifact; --check, run by the SDK's
			// CI, only needs the manifest to be authentic.
			channels := o.channels
			m, checks, err := verify.Release(cmd.Context(), o.manifest, verify.Options{
				Verifier: v, Channels: channels, AllowInsecure: g.allowInsecure, Log: g.logger(), ManifestOnly: o.check,
			})
			if err != nil {
				if len(checks) > 0 {
					printChecks(g, o.manifest, m.Version, checks)
				}
				return fmt.Errorf("not pinning %s: %w", o.manifest, err)
			}
			constants, table, err := pin.Plan(o.sdk, m)
			if err != nil {
				return err
			}
			if o.check {
				return pin.Check(o.sdk, constants, table)
			}
			if err := pin.Write(o.sdk, constants, table); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, filepath.Join(o.sdk, pin.ConstantsFile))
			fmt.Fprintln(g.stdout, filepath.Join(filepath.Dir(filepath.Join(o.sdk, pin.ConstantsFile)), pin.TableFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.manifest, "manifest", "", "the release manifest (path or URL)")
	f.StringVar(&o.sdk, "sdk", "", "the runpod_flash SDK checkout")
	f.BoolVar(&o.check, "check", false, "change nothing; exit 1 if the SDK is not pinned to this release")
	o.verifyOptions.addFlags(cmd)
	return cmd
}
