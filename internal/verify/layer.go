package verify

import (
	"compress/gzip"
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
	// The uncompressed stream is hashed on the way, for the diff ID a
	// start script checks the volume's copy against.
	var w io.Writer = h
	diff := make(chan stream, 1)
	pr, pw := io.Pipe()
	if l.DiffID != "" {
		go func() { diff <- uncompressed(pr, l.TarSize) }()
		w = io.MultiWriter(h, pw)
	} else {
		diff <- stream{}
	}
	n, err := io.Copy(w, io.LimitReader(body, l.Size+1))
	pw.Close()
	d := <-diff
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
	case l.DiffID == "":
	case d.err != nil:
		return fail(fmt.Errorf("decompressing: %w", d.err))
	case d.digest != l.DiffID || d.size != l.TarSize:
		return fail(fmt.Errorf("uncompressed %d bytes %s, manifest says %d bytes %s", d.size, d.digest, l.TarSize, l.DiffID))
	}
	c.OK = true
	return c
}

type stream struct {
	digest string
	size   int64
	err    error
}

// uncompressed hashes a gzip stream's content, reading no more than
// limit+1 bytes of it (a layer's tar_size; any when 0), and drains r.
func uncompressed(r io.Reader, limit int64) stream {
	defer io.Copy(io.Discard, r)
	zr, err := gzip.NewReader(r)
	if err != nil {
		return stream{err: err}
	}
	var lr io.Reader = zr
	if limit > 0 {
		lr = io.LimitReader(zr, limit+1)
	}
	h := sha256.New()
	n, err := io.Copy(h, lr)
	return stream{digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), size: n, err: err}
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
