package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/inject"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

type injectOptions struct {
	manifest string
	target   string
	urls     []string
	fwDir    string
	cacheDir string
}

func newInject(g *globalOptions) *cobra.Command {
	o := &injectOptions{}
	cmd := &cobra.Command{
		Use:   "inject --manifest M --target ID",
		Short: "Print the container start command that downloads, verifies, caches and runs a target's tarball",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.manifest == "" || o.target == "" {
				return usageError{fmt.Errorf("inject needs --manifest and --target")}
			}
			m, err := readManifest(cmd.Context(), g, o.manifest)
			if err != nil {
				return err
			}
			a, ok := m.Find(o.target)
			if !ok {
				var ids []string
				for _, a := range m.Artifacts {
					ids = append(ids, a.Target.ID)
				}
				return usageError{fmt.Errorf("--target %s is not in %s; it has: %s", o.target, o.manifest, strings.Join(ids, ", "))}
			}
			script, err := inject.Command(m, a, inject.Options{URLs: o.urls, FWDir: o.fwDir, CacheDir: o.cacheDir})
			if err != nil {
				return err
			}
			if g.json {
				return json.NewEncoder(g.stdout).Encode(map[string]any{"command": []string{"bash", "-c", script}})
			}
			_, err = io.WriteString(g.stdout, script)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.manifest, "manifest", "", "the release manifest (path or URL)")
	f.StringVar(&o.target, "target", "", "the target ID, e.g. py3.11-cpu-linux-x86_64")
	f.StringArrayVar(&o.urls, "url", nil, "download from this URL instead of the manifest's (repeatable: tried in order)")
	f.StringVar(&o.fwDir, "fw-dir", inject.DefaultFWDir, "where the worker is unpacked")
	f.StringVar(&o.cacheDir, "cache-dir", inject.DefaultCacheDir, "the network volume's cache")
	return cmd
}

// readManifest reads a manifest from a path or an http(s) URL.
func readManifest(ctx context.Context, g *globalOptions, ref string) (*manifest.Manifest, error) {
	var data []byte
	var err error
	if strings.HasPrefix(ref, "https://") || (g.allowInsecure && strings.HasPrefix(ref, "http://")) {
		data, err = httpGet(ctx, ref)
	} else {
		data, err = os.ReadFile(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	m, err := manifest.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return m, nil
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}
