package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/layer"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// OverlayPrefix is where the overlay image holds the tree.
const OverlayPrefix = "opt/flash-worker"

// LayerDir is where a target's layer files go below dist: kind is "mount"
// (the tree at the layers' root) or "overlay" (under OverlayPrefix).
func LayerDir(dist, targetID, kind string) string {
	return filepath.Join(dist, "layers", targetID, kind)
}

// writeLayers packs the tree the tarball was packed from into image layers
// at their root for the mount image and, when the target's accelerator has
// a base in images.bases, under OverlayPrefix for its overlay image, and
// returns the mount layers (what the manifest lists).
// entries are the tarball's, as they were before packing linked duplicates
// (a layer must not link into another); metadata is MANIFEST.json's
// content, which packing filled in, written into the tree here so every
// layer file comes from disk.
func (b *Builder) writeLayers(ctx context.Context, t target.Target, root string, entries []archive.Entry, metadata []byte) ([]manifest.Layer, error) {
	meta := filepath.Join(root, MetadataFile)
	if err := os.WriteFile(meta, metadata, 0o644); err != nil {
		return nil, err
	}
	for i := range entries {
		if entries[i].Deferred {
			entries[i].Deferred, entries[i].Source = false, meta
		}
	}
	kinds := map[string]string{"mount": ""}
	// Only an overlay image uses the layers under OverlayPrefix: packing
	// them costs a second compression of the tree.
	if _, ok := b.Config.Images.Bases[t.Accel]; ok {
		kinds["overlay"] = OverlayPrefix
	}
	var mount []layer.Layer
	g, ctx := errgroup.WithContext(ctx)
	for kind, prefix := range kinds {
		g.Go(func() error {
			ls, err := layer.Write(ctx, entries, b.Config.Layers, layer.Options{
				Dir: LayerDir(b.Dist, t.ID(), kind), Prefix: prefix, Epoch: b.Source.Epoch,
				TempDir: filepath.Join(b.Dist, ".work"),
			})
			if kind == "mount" {
				mount = ls
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("writing the image layers of %s: %w", t.ID(), err)
	}
	out := make([]manifest.Layer, len(mount))
	for i, l := range mount {
		out[i] = manifest.Layer{Name: l.Name, Digest: l.Digest, Size: l.Size, DiffID: l.DiffID, TarSize: l.TarSize}
	}
	return out, nil
}
