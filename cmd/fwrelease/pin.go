package main

import (
	"encoding/hex"
	"errors"
	"fmt"

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
		Short: "Verify a release and pin the SDK to it (FLASH_WORKER_VERSION and the generated flash_worker_release.py)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.manifest == "" || o.sdk == "" {
				return usageError{errors.New("pin needs --manifest and --sdk")}
			}
			v, err := makeVerifier(&o.verifyOptions)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			vo := verify.Options{Verifier: v, Channels: o.channels, AllowInsecure: g.allowInsecure, Log: g.logger()}
			m, digest, err := verify.Manifest(ctx, o.manifest, vo)
			if err != nil {
				return fmt.Errorf("not pinning %s: %w", o.manifest, err)
			}
			// Pinning checks every artifact; --check, run by the SDK's CI,
			// only needs the manifest to be authentic.
			if !o.check {
				if checks, err := verify.Artifacts(ctx, m, vo); err != nil {
					if len(checks) > 0 {
						printChecks(g, o.manifest, m.Version, checks)
					}
					return fmt.Errorf("not pinning %s: %w", o.manifest, err)
				}
			}
			files, err := pin.Plan(o.sdk, pin.Release{Manifest: m, SHA256: hex.EncodeToString(digest), AllowInsecure: g.allowInsecure})
			if err != nil {
				return err
			}
			if o.check {
				return pin.Check(files)
			}
			if err := pin.Write(files); err != nil {
				return err
			}
			if files.ModuleOnly() {
				g.logger().Warn("pinned the module only: the SDK has no FLASH_WORKER_VERSION constant to pin", "constants", files.ConstantsPath)
			} else {
				fmt.Fprintln(g.stdout, files.ConstantsPath)
			}
			fmt.Fprintln(g.stdout, files.ModulePath)
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
