package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// layerFiles checks every layer file of an artifact on every wanted
// channel: size and digest, read as a stream no longer than the size. A
// layer file has no signature of its own: its digest is in the manifest,
// whose signature was checked.
func (o Options) layerFiles(ctx context.Context, a manifest.Artifact) []Check {
	var checks []Check
	for _, l := range a.Layers {
		for _, u := range l.URLs {
			ch := layerChannel(&a, u)
			if !o.wanted(ch) {
				continue
			}
			c := o.layerFile(ctx, a, l, u)
			c.Channel = ch
			checks = append(checks, c)
		}
	}
	return checks
}

func (o Options) layerFile(ctx context.Context, a manifest.Artifact, l manifest.Layer, u string) Check {
	c := Check{Target: a.Target.ID, Layer: l.Name, URL: u, Signature: "unchecked"}
	if o.Verifier != nil {
		c.Signature = "manifest"
	}
	fail := func(err error) Check {
		c.Error = fmt.Sprintf("%s layer %s: %v", l.Name, u, err)
		return c
	}
	body, err := o.open(ctx, u)
	if err != nil {
		return fail(err)
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(body, l.Size+1))
	if err != nil {
		return fail(err)
	}
	c.Size, c.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	switch {
	case n > l.Size:
		return fail(fmt.Errorf("more than the manifest's %d bytes; stopped reading there", l.Size))
	case n != l.Size:
		return fail(fmt.Errorf("size %d, manifest says %d", n, l.Size))
	case "sha256:"+c.SHA256 != l.Digest:
		return fail(fmt.Errorf("sha256:%s, manifest says %s", c.SHA256, l.Digest))
	}
	c.OK = true
	return c
}

// layerChannel names the channel of a layer file's URL: that of the
// tarball's URL in the same place, or what the URL's shape says.
func layerChannel(a *manifest.Artifact, u string) string {
	dir := u[:strings.LastIndex(u, "/")+1]
	for _, au := range a.URLs {
		if rest, ok := strings.CutPrefix(au, dir); ok && !strings.Contains(rest, "/") {
			return channelOf(a, au)
		}
	}
	return channelOf(a, u)
}
