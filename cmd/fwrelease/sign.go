package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/release"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

type signOptions struct {
	key     string
	keyless bool
}

func newSign(g *globalOptions) *cobra.Command {
	o := &signOptions{}
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign every tarball in dist/ (and manifest.json) with Sigstore bundles; write SHA256SUMS",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// A key on the command line needs no config.
			cfg, err := g.loadConfig("")
			if err != nil && o.key == "" && !o.keyless {
				return fmt.Errorf("no --key or --keyless, and the config gives none: %w", err)
			}
			s, err := makeSigner(ctx, g, o, cfg)
			if err != nil {
				return err
			}
			r, err := release.Load(g.dist, nil)
			if err != nil {
				return err
			}
			if err := (&release.SignStep{Signer: s, Release: r}).Run(ctx); err != nil {
				return err
			}
			for _, a := range r.Artifacts {
				fmt.Fprintln(g.stdout, a.Signature.Path)
			}
			mpath := filepath.Join(g.dist, release.ManifestFile)
			if _, err := os.Stat(mpath); err == nil {
				b, err := s.SignFile(ctx, mpath)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, b)
			}
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *signOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.key, "key", "", "signing key: a PEM file, env://VAR or a KMS URI (default: sign.key in the config)")
	cmd.Flags().BoolVar(&o.keyless, "keyless", false, "sign with a Fulcio certificate from the CI's OIDC token")
	cmd.MarkFlagsMutuallyExclusive("key", "keyless")
}

// makeSigner picks the key from the flags, else from the config (nil when
// there is none).
func makeSigner(ctx context.Context, g *globalOptions, o *signOptions, cfg *config.Config) (*sign.Signer, error) {
	key, keyless := o.key, o.keyless
	var fulcio, rekor string
	if cfg != nil {
		fulcio, rekor = cfg.Sign.FulcioURL, cfg.Sign.RekorURL
		if key == "" && !keyless {
			key, keyless = cfg.Sign.Key, cfg.Sign.Keyless
		}
	}
	if keyless {
		for _, u := range []string{fulcio, rekor} {
			if u != "" {
				if err := insecure.Check(u, g.allowInsecure); err != nil {
					return nil, fmt.Errorf("sign: %w", err)
				}
			}
		}
		return sign.NewKeyless(ctx, sign.KeylessOptions{FulcioURL: fulcio, RekorURL: rekor})
	}
	if key == "" {
		return nil, usageError{errors.New("no signing key: pass --key (a PEM file, env://VAR or a KMS URI) or set sign.key in the config")}
	}
	sv, err := sign.LoadKey(ctx, key)
	if err != nil {
		return nil, err
	}
	return sign.New(ctx, sv)
}
