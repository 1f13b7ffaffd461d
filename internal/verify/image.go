package verify

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// overlayDir is where an overlay image holds the tree.
const overlayDir = "opt/flash-worker"

// images checks every image of an artifact the manifest lists.
func (o Options) images(ctx context.Context, m *manifest.Manifest, a manifest.Artifact) []Check {
	if a.Images == nil {
		return nil
	}
	var checks []Check
	if a.Images.Mount != "" {
		checks = append(checks, o.image(ctx, m, a, "mount", a.Images.Mount, ""))
	}
	bases := make([]string, 0, len(a.Images.Overlay))
	for b := range a.Images.Overlay {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for _, b := range bases {
		checks = append(checks, o.image(ctx, m, a, "overlay "+b, a.Images.Overlay[b], overlayDir))
	}
	return checks
}

// image checks one image: its layers (the last len(a.Layers) of it, the
// tree under prefix) hold the tree MANIFEST.json describes, of this
// release and target; a mount image's are exactly the manifest's layers;
// and its signature is a bundle over the image manifest's digest.
func (o Options) image(ctx context.Context, m *manifest.Manifest, a manifest.Artifact, kind, ref, prefix string) Check {
	c := Check{Target: a.Target.ID, Channel: "oci", Image: kind, URL: ref, Signature: "unchecked"}
	fail := func(err error) Check {
		c.Error = fmt.Sprintf("%s image: %v", kind, err)
		return c
	}
	src, err := o.openOCI(ctx, ref)
	if err != nil {
		return fail(err)
	}
	digest := sha256.Sum256(src.manifest)
	c.SHA256, c.Size = hex.EncodeToString(digest[:]), int64(len(src.manifest))
	if !strings.HasSuffix(ref, "@sha256:"+c.SHA256) {
		return fail(fmt.Errorf("the registry's manifest has digest sha256:%s", c.SHA256))
	}
	var im v1.Manifest
	if err := json.Unmarshal(src.manifest, &im); err != nil {
		return fail(err)
	}
	if len(im.Layers) < len(a.Layers) || len(a.Layers) == 0 {
		return fail(fmt.Errorf("%d layers, the manifest lists %d of the tree", len(im.Layers), len(a.Layers)))
	}
	ours := im.Layers[len(im.Layers)-len(a.Layers):]
	if prefix == "" && len(im.Layers) != len(a.Layers) {
		return fail(fmt.Errorf("%d layers, the manifest lists %d", len(im.Layers), len(a.Layers)))
	}
	for i, l := range ours {
		if prefix == "" && (l.Digest.String() != a.Layers[i].Digest || l.Size != a.Layers[i].Size) {
			return fail(fmt.Errorf("layer %d is %s (%d bytes), the manifest's %s is %s (%d bytes)", i, l.Digest, l.Size, a.Layers[i].Name, a.Layers[i].Digest, a.Layers[i].Size))
		}
	}
	t := tree{sums: map[string]string{}, prefix: prefix}
	for _, l := range ours {
		if err := t.read(src, l); err != nil {
			return fail(fmt.Errorf("layer %s: %w", l.Digest, err))
		}
	}
	if err := t.check(m, a); err != nil {
		return fail(err)
	}
	if o.Verifier != nil {
		if err := c.checkSignature(o.Verifier, src.bundle, digest[:]); err != nil {
			return fail(err)
		}
	}
	c.OK = true
	return c
}

// tree is what an image's layers hold, read back: each regular file's
// sha256 by its name in the tree, and the two files checkInside reads.
type tree struct {
	prefix string
	sums   map[string]string
	inside archive.Contents
}

// read streams one layer, checking its digest as it goes.
func (t *tree) read(src *ociSource, l v1.Descriptor) error {
	rc, err := src.blob(l.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(io.LimitReader(rc, l.Size+1), h))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := t.add(hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.Digest.Hex {
		return fmt.Errorf("the blob has sha256 %s", got)
	}
	return nil
}

func (t *tree) add(hdr *tar.Header, r io.Reader) error {
	name := strings.TrimSuffix(hdr.Name, "/")
	if path.IsAbs(name) || name != path.Clean(name) || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("unsafe name")
	}
	if t.prefix != "" {
		if name == t.prefix || strings.HasPrefix(t.prefix, name+"/") {
			return nil // the directories above the tree
		}
		rest, ok := strings.CutPrefix(name, t.prefix+"/")
		if !ok {
			return fmt.Errorf("outside %s", t.prefix)
		}
		name = rest
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		h := sha256.New()
		var small strings.Builder
		w := io.Writer(h)
		if name == ".version" || name == "MANIFEST.json" {
			w = io.MultiWriter(h, &small)
		}
		if _, err := io.Copy(w, r); err != nil {
			return err
		}
		t.sums[name] = hex.EncodeToString(h.Sum(nil))
		switch name {
		case ".version":
			t.inside.Version = []byte(small.String())
		case "MANIFEST.json":
			t.inside.Manifest = []byte(small.String())
		}
	case tar.TypeLink:
		target := strings.TrimPrefix(hdr.Linkname, t.prefix+"/")
		sum, ok := t.sums[target]
		if !ok {
			return fmt.Errorf("hard link to %s, which no earlier entry of the layer is", hdr.Linkname)
		}
		t.sums[name] = sum
	case tar.TypeDir, tar.TypeSymlink:
	default:
		return fmt.Errorf("entry of type %q", hdr.Typeflag)
	}
	return nil
}

// check compares the tree with MANIFEST.json's tree_sha256 (the sha256 of
// the sha256sum listing of every other file, in C order) and MANIFEST.json
// and .version with the release manifest.
func (t *tree) check(m *manifest.Manifest, a manifest.Artifact) error {
	if err := checkInside(m, a, &t.inside); err != nil {
		return err
	}
	var meta struct {
		TreeSHA256 string `json:"tree_sha256"`
	}
	if err := json.Unmarshal(t.inside.Manifest, &meta); err != nil {
		return fmt.Errorf("MANIFEST.json: %w", err)
	}
	names := make([]string, 0, len(t.sums))
	for n := range t.sums {
		if n != "MANIFEST.json" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	listing := sha256.New()
	for _, n := range names {
		fmt.Fprintf(listing, "%s  %s\n", t.sums[n], n)
	}
	if got := hex.EncodeToString(listing.Sum(nil)); got != meta.TreeSHA256 {
		return fmt.Errorf("the layers' tree has sha256 %s, MANIFEST.json's tree_sha256 is %s", got, meta.TreeSHA256)
	}
	return nil
}
