package coldstart

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runpod-workers/fwrelease/internal/containertest"
)

// linkProxy is a reverse proxy on 127.0.0.1 in front of target
// (host:port) whose responses go through l: what podman pulls from the
// registry behind it (manifests, configs, layers) comes at rate and is
// counted. It returns the proxy's host:port.
func linkProxy(t *testing.T, target string, l *link) string {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &linkBody{ReadCloser: resp.Body, l: l}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type linkBody struct {
	io.ReadCloser
	l *link
}

func (b *linkBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p[:min(len(p), 64<<10)])
	b.l.carry(n)
	return n, err
}

// images are one release's images in the registry, by digest, as podman
// pulls them: through the link.
type images struct{ mount, overlay string }

// push copies r's images from its snapshot's OCI layout into the registry
// (not through the link) and returns their references through the link.
func (r release) push(t *testing.T, registry, via string) images {
	t.Helper()
	one := func(ref, kind string) string {
		dir, digest, _ := strings.Cut(ref, "@")
		h, err := v1.NewHash(digest)
		if err != nil {
			t.Fatalf("the %s image's reference %q: %v", kind, ref, err)
		}
		p, err := layout.FromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		img, err := p.Image(h)
		if err != nil {
			t.Fatalf("%s in %s: %v", digest, dir, err)
		}
		tag, _ := name.NewTag(registry+"/bench/fw:"+r.version+"-"+kind, name.Insecure)
		if err := remote.Write(tag, img); err != nil {
			t.Fatalf("pushing %s: %v", tag, err)
		}
		return via + "/bench/fw@" + digest
	}
	return images{mount: one(r.mount, "mount"), overlay: one(r.overlay, "overlay")}
}

// pullStart is what a host does to start the worker from images: podman
// pull of each of refs, one after the other, then the container's start
// to the worker's exit. The container's creation between the two is not
// timed, as for the start commands' rows. It returns the time and the
// bytes pulled through the link.
func pullStart(t *testing.T, rt *containertest.Runtime, l *link, refs []string, opts containertest.Options) (time.Duration, int64) {
	t.Helper()
	before := l.sent.Load()
	start := time.Now()
	for _, ref := range refs {
		rt.Pull(t, ref)
	}
	pulled := time.Since(start)
	return pulled + timed(t, rt.Create(t, opts)), l.sent.Load() - before
}

// imageRow is one way to start the worker from images: what the host
// holds before (pulled untimed), what it pulls in the timed run, and the
// container.
type imageRow struct {
	name, kind string // kind: "cold" or "upgrade", for × SDK and × floor
	baseAbsent bool
	host, pull []string
	opts       containertest.Options
}

// baseAlone is the row of the base's pull and start without the worker.
const baseAlone = "the base alone (no worker, `sh -c echo`), base absent"

// imageRows: slim is the base as the host has it (pulled past the link),
// slimVia the same through the link; v1 and v2 the two versions' images.
func imageRows(slim, slimVia string, v1, v2 images) []imageRow {
	overlay := func(ref string) containertest.Options { return containertest.Options{Image: ref} } // its entrypoint, bootstrap.sh
	mount := func(base, ref string) containertest.Options {
		return containertest.Options{Image: base, Cmd: []string{"/opt/flash-worker/bootstrap.sh"},
			Mounts: []string{"type=image,source=" + ref + ",destination=/opt/flash-worker"}}
	}
	// The rows with the base on the host first: between them only the
	// worker's images are removed, not the base (pulling it again costs).
	return []imageRow{
		{name: "overlay image, base on the host", kind: "cold", host: []string{slim}, pull: []string{v1.overlay}, opts: overlay(v1.overlay)},
		{name: "mount image on the base, base on the host", kind: "cold", host: []string{slim}, pull: []string{v1.mount}, opts: mount(slim, v1.mount)},
		{name: "overlay image, upgrade", kind: "upgrade", host: []string{slim, v1.overlay}, pull: []string{v2.overlay}, opts: overlay(v2.overlay)},
		{name: "mount image on the base, upgrade", kind: "upgrade", host: []string{slim, v1.mount}, pull: []string{v2.mount}, opts: mount(slim, v2.mount)},
		{name: "overlay image, base absent", kind: "cold", baseAbsent: true, pull: []string{v1.overlay}, opts: overlay(v1.overlay)},
		{name: "mount image on the base, base absent", kind: "cold", baseAbsent: true, pull: []string{slimVia, v1.mount}, opts: mount(slimVia, v1.mount)},
		{name: baseAlone, kind: "cold", baseAbsent: true, pull: []string{slimVia},
			opts: containertest.Options{Image: slimVia, Cmd: []string{"sh", "-c", "echo bootstrap ran"}}},
	}
}

// measureImages runs each row once: before a row with the base on the
// host the worker's images (workers) are removed, before a row without it
// every image; then the row's host images are pulled. It leaves the
// storage empty.
func measureImages(t *testing.T, rt *containertest.Runtime, l *link, rows []imageRow, workers []string, results map[string]*sample) {
	t.Helper()
	for _, r := range rows {
		if r.baseAbsent {
			rt.RemoveImages(t)
		} else {
			rt.RemoveImages(t, workers...)
		}
		for _, ref := range r.host {
			rt.Pull(t, ref)
		}
		d, b := pullStart(t, rt, l, r.pull, r.opts)
		if results[r.name] == nil {
			results[r.name] = &sample{}
		}
		results[r.name].add(d, b)
	}
	rt.RemoveImages(t)
}

// writeImages writes the images' table; sdk gives the SDK's command's
// median time for "cold" and "upgrade" on the same base (there, on the
// host: × SDK is left out where the base is absent).
func writeImages(b *strings.Builder, rows []imageRow, results map[string]*sample, sdk func(kind string) float64, floor float64, r release) {
	_, baseBytes := results[baseAlone].median()
	fmt.Fprintf(b, "\nThe same tree as images (layers `deps` and `worker`; worker layer %.1f KB of the mount image), pulled by podman from the loopback registry through a proxy at the same %.0f MB/s that counts the bytes, on the same slim look-alike. "+
		"Time from the start of the first `podman pull` to the worker's exit: the pulls of the case, one after the other, then `podman start --attach` of a container created from them (the creation between the two is not timed, as it is not for the start commands). "+
		"Before each case the storage holds no image of the worker (`podman rmi`): \"base on the host\" has the base pulled before the timed run; \"base absent\" starts from an empty storage (`podman rmi --all`) and pulls nothing before it (the overlay's pull brings the base's layers; the mount case pulls the base, then the mount image); "+
		"\"upgrade\" pulls the base and 1.0.0's image before it and times 1.0.1's (only `.version` and `MANIFEST.json` changed: the same deps layer). "+
		"The base look-alike is %.1f MB pulled (its layers are compressed with gzip -1); a start command's cold start on a host without the base adds about the base-alone row, less the base's start.\n\n",
		float64(r.workerLayer)/1e3, rate/1e6, baseBytes/1e6)
	fmt.Fprintf(b, "| image | case | time (s) | × SDK | × floor | pulled (MB) |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, row := range rows {
		tm, by := results[row.name].median()
		xs, fl := "—", "—"
		if !row.baseAbsent {
			xs, fl = fmt.Sprintf("%.2f", tm/sdk(row.kind)), fmt.Sprintf("%.2f", tm/floor)
		}
		fmt.Fprintf(b, "| %s | %s | %.3f | %s | %s | %.3f |\n", row.name, row.kind, tm, xs, fl, by/1e6)
	}
}
