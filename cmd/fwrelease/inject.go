package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/inject"
	"github.com/runpod-workers/fwrelease/internal/verify"
)

type injectOptions struct {
	verifyOptions
	manifest   string
	target     string
	urls       []string
	fwDir      string
	cacheDir   string
	dockerArgs bool
	layers     bool
}

func newInject(g *globalOptions) *cobra.Command {
	o := &injectOptions{}
	cmd := &cobra.Command{
		Use:   "inject --manifest M --target ID",
		Short: "Print the container start script that downloads, verifies, caches and runs a target's tarball",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.manifest == "" || o.target == "" {
				return usageError{errors.New("inject needs --manifest and --target")}
			}
			if g.json && o.dockerArgs {
				return usageError{errors.New("give --json or --docker-args, not both")}
			}
			v, err := makeVerifier(&o.verifyOptions)
			if err != nil {
				return err
			}
			// The script checks the tarball's digest itself; what must be
			// authentic here is the manifest that digest comes from.
			m, _, err := verify.Manifest(cmd.Context(), o.manifest, verify.Options{Verifier: v, AllowInsecure: g.allowInsecure, Log: g.logger()})
			if err != nil {
				return fmt.Errorf("not using %s: %w", o.manifest, err)
			}
			a, ok := m.Find(o.target)
			if !ok {
				var ids []string
				for _, a := range m.Artifacts {
					ids = append(ids, a.Target.ID)
				}
				return usageError{fmt.Errorf("--target %s is not in %s; it has: %s", o.target, o.manifest, strings.Join(ids, ", "))}
			}
			script, err := inject.Script(m.Version, a, inject.Options{
				URLs: o.urls, FWDir: o.fwDir, CacheDir: o.cacheDir, AllowInsecure: g.allowInsecure, Layers: o.layers,
			})
			if err != nil {
				return err
			}
			switch {
			case g.json:
				return json.NewEncoder(g.stdout).Encode([]string{"bash", "-c", script})
			case o.dockerArgs:
				_, err = fmt.Fprintln(g.stdout, inject.DockerArgs(script))
			default:
				_, err = io.WriteString(g.stdout, script)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.manifest, "manifest", "", "the release manifest (path or URL)")
	f.StringVar(&o.target, "target", "", "the target ID, e.g. py3.11-cpu-linux-x86_64")
	f.StringArrayVar(&o.urls, "url", nil, "download from this https URL instead of the manifest's (repeatable: tried in order)")
	f.StringVar(&o.fwDir, "fw-dir", inject.DefaultFWDir, "where the worker is unpacked")
	f.StringVar(&o.cacheDir, "cache-dir", inject.DefaultCacheDir, "the network volume's cache")
	f.BoolVar(&o.dockerArgs, "docker-args", false, "print the endpoint template's dockerArgs (bash -c and the quoted script)")
	f.BoolVar(&o.layers, "layers", false, "fetch the target's layers (each cached on the volume by digest) instead of its tarball")
	o.verifyOptions.addTrustFlags(cmd)
	return cmd
}
