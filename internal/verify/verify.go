// Package verify checks a published release the way a consumer would meet
// it: the manifest's signature, then every artifact on every channel,
// downloaded as a stream and checked for size, digest, signature, a safe
// layout and the version stamped inside (docs/cli.md).
package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/schema"
)

// Options say whom to trust and what to fetch.
type Options struct {
	Verifier      *sign.Verifier // nil: signatures are not checked (and the report says so)
	Channels      []string       // only these channels; empty: all
	ManifestOnly  bool           // check the manifest's signature and schema, not the artifacts
	AllowInsecure bool           // plain http to loopback
	HTTP          *http.Client
	Log           *slog.Logger
}

// Check is the outcome for one artifact (a tarball, a layer file, an
// image) on one channel.
type Check struct {
	Target    string `json:"target"`
	Channel   string `json:"channel"`
	URL       string `json:"url"`
	Image     string `json:"image,omitempty"` // an image's kind: "mount", "overlay cpu"
	Layer     string `json:"layer,omitempty"` // a layer file's layer: "deps"
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Signature string `json:"signature"`        // "ok", "unchecked", or the failure
	Signer    string `json:"signer,omitempty"` // whom the signature was accepted from: "key", or the source repository@ref
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
}

// ErrFailed is returned when any check failed; the checks say which.
var ErrFailed = errors.New("verification failed")

// Release verifies the manifest at ref (a path or URL) and every artifact
// it lists.
func Release(ctx context.Context, ref string, o Options) (*manifest.Manifest, []Check, error) {
	o = o.withDefaults()
	m, _, err := o.manifest(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	if o.ManifestOnly {
		return m, nil, nil
	}
	checks, err := Artifacts(ctx, m, o)
	return m, checks, err
}

// Artifacts checks every artifact of an already verified manifest on every
// wanted channel.
func Artifacts(ctx context.Context, m *manifest.Manifest, o Options) ([]Check, error) {
	o = o.withDefaults()
	var checks []Check
	failed := false
	for _, a := range m.Artifacts {
		for _, u := range a.URLs {
			ch := channelOf(&a, u)
			if !o.wanted(ch) {
				continue
			}
			c := o.artifact(ctx, m, a, u)
			c.Channel = ch
			failed = failed || !c.OK
			checks = append(checks, c)
		}
		for _, c := range o.layerFiles(ctx, a) {
			failed = failed || !c.OK
			checks = append(checks, c)
		}
		if a.OCI != "" && o.wanted("oci") {
			c := o.ociArtifact(ctx, m, a)
			failed = failed || !c.OK
			checks = append(checks, c)
		}
		if o.wanted("oci") {
			for _, c := range o.images(ctx, m, a) {
				failed = failed || !c.OK
				checks = append(checks, c)
			}
		}
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("%w: no artifact URLs to check on channels %v", ErrFailed, o.Channels)
	}
	if failed {
		return checks, ErrFailed
	}
	return checks, nil
}

// Manifest reads the manifest at ref (a path or URL), checks it against
// the schema and, with a Verifier, its signature, and returns it with the
// sha256 of the bytes that were checked.
func Manifest(ctx context.Context, ref string, o Options) (*manifest.Manifest, []byte, error) {
	return o.withDefaults().manifest(ctx, ref)
}

func (o Options) manifest(ctx context.Context, ref string) (*manifest.Manifest, []byte, error) {
	data, err := o.fetchAll(ctx, ref)
	if err != nil {
		return nil, nil, fmt.Errorf("reading manifest: %w", err)
	}
	// Decoding first is safe (strict JSON, nothing acted on) and says
	// plainly what is wrong with a manifest that is not one.
	m, err := manifest.Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ref, err)
	}
	if err := schema.ValidateManifest(data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ref, err)
	}
	digest := sha256Sum(data)
	if o.Verifier != nil {
		b, err := o.fetchAll(ctx, ref+sign.BundleSuffix)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the manifest's signature: %w", err)
		}
		if _, err := verifyBundle(o.Verifier, b, digest); err != nil {
			return nil, nil, fmt.Errorf("manifest %s: %w", ref, err)
		}
	}
	return m, digest, nil
}

// withDefaults fills in the HTTP client: one that follows a redirect only
// where the first request could have gone (https; loopback http with
// AllowInsecure), so a mirror cannot downgrade a download to plain http.
func (o Options) withDefaults() Options {
	if o.HTTP == nil {
		o.HTTP = &http.Client{CheckRedirect: insecure.CheckRedirect(o.AllowInsecure)}
	}
	return o
}

func (o Options) wanted(channel string) bool {
	if len(o.Channels) == 0 {
		return true
	}
	for _, c := range o.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

// channelOf names the channel a URL belongs to, for reports and --channel:
// the one the manifest records, or, in a manifest written before it recorded
// channels, the one the URL's shape says.
func channelOf(a *manifest.Artifact, u string) string {
	if ch := a.ChannelOf(u); ch != "" {
		return ch
	}
	switch {
	case strings.HasPrefix(u, "file://"):
		return "local"
	case strings.Contains(u, "/releases/download/"):
		return "github"
	}
	return "s3"
}

func (o Options) artifact(ctx context.Context, m *manifest.Manifest, a manifest.Artifact, u string) Check {
	c := Check{Target: a.Target.ID, URL: u, Signature: "unchecked"}
	body, err := o.open(ctx, u)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer body.Close()
	bundle := func() ([]byte, error) {
		su, err := signatureBeside(a, u)
		if err != nil {
			return nil, err
		}
		return o.fetchAll(ctx, su)
	}
	return o.check(c, m, a, body, bundle)
}

// signatureBeside pairs an artifact's URL with its signature's by name: the
// signature URL in the same place whose last segment is the bundle's name.
func signatureBeside(a manifest.Artifact, u string) (string, error) {
	if a.Signature == nil || len(a.Signature.URLs) == 0 {
		return "", errMissingSignature
	}
	dir := u[:strings.LastIndex(u, "/")+1]
	for _, su := range a.Signature.URLs {
		rest, ok := strings.CutPrefix(su, dir)
		if !ok || strings.Contains(rest, "/") {
			continue
		}
		if name, err := url.PathUnescape(rest); err == nil && name == a.Signature.Bundle {
			return su, nil
		}
	}
	return "", fmt.Errorf("the manifest lists no signature %s beside %s", a.Signature.Bundle, u)
}

func (o Options) ociArtifact(ctx context.Context, m *manifest.Manifest, a manifest.Artifact) Check {
	c := Check{Target: a.Target.ID, Channel: "oci", URL: a.OCI, Signature: "unchecked"}
	src, err := o.openOCI(ctx, a.OCI)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	body, err := src.tarball(a.SHA256, a.Size)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer body.Close()
	return o.check(c, m, a, body, src.bundle)
}

var errMissingSignature = errors.New("the manifest lists no signature for this artifact")

// check reads one download of an artifact as a stream: layout, size,
// digest, what is stamped inside, and the signature over the digest.
func (o Options) check(c Check, m *manifest.Manifest, a manifest.Artifact, body io.Reader, bundle func() ([]byte, error)) Check {
	fail := func(err error) Check {
		c.Error = err.Error()
		return c
	}
	// A mirror could send the right bytes and then never stop: one byte
	// past the manifest's size is enough to know it is wrong.
	body = io.LimitReader(body, a.Size+1)
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(body, h)}
	contents, err := archive.Read(counted)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil { // the rest of the stream, for the digest
		return fail(fmt.Errorf("reading %s: %w", c.URL, err))
	}
	c.Size, c.SHA256 = counted.n, hex.EncodeToString(h.Sum(nil))
	switch {
	case c.Size > a.Size:
		return fail(fmt.Errorf("more than the manifest's %d bytes; stopped reading there", a.Size))
	case c.Size != a.Size:
		return fail(fmt.Errorf("size %d, manifest says %d", c.Size, a.Size))
	case c.SHA256 != a.SHA256:
		return fail(fmt.Errorf("sha256 %s, manifest says %s", c.SHA256, a.SHA256))
	case a.DiffID != "" && ("sha256:"+contents.TarSHA256 != a.DiffID || contents.TarSize != a.TarSize):
		return fail(fmt.Errorf("uncompressed %d bytes sha256:%s, manifest says %d bytes %s (diff_id, tar_size)", contents.TarSize, contents.TarSHA256, a.TarSize, a.DiffID))
	}
	if err := checkInside(m, a, contents); err != nil {
		return fail(err)
	}
	if o.Verifier != nil {
		if err := c.checkSignature(o.Verifier, bundle, h.Sum(nil)); err != nil {
			return fail(err)
		}
	}
	c.OK = true
	return c
}

// checkSignature verifies the bundle over digest and records the outcome
// in c: "missing" when the bundle cannot be read, "bad" when it does not
// verify, else "ok" and whom it was accepted from.
func (c *Check) checkSignature(v *sign.Verifier, bundle func() ([]byte, error), digest []byte) error {
	b, err := bundle()
	if err != nil {
		c.Signature = "missing"
		return err
	}
	signer, err := verifyBundle(v, b, digest)
	if err != nil {
		c.Signature = "bad"
		return err
	}
	c.Signature, c.Signer = "ok", signer
	return nil
}

// checkInside compares .version and MANIFEST.json with the manifest.
func checkInside(m *manifest.Manifest, a manifest.Artifact, c *archive.Contents) error {
	if string(c.Version) != m.Version+"\n" {
		return fmt.Errorf(".version is %q, the manifest says %q", c.Version, m.Version)
	}
	var meta struct {
		Version       string `json:"version"`
		Target        string `json:"target"`
		PythonVersion string `json:"python_version"`
		Accel         string `json:"accel"`
	}
	if err := json.Unmarshal(c.Manifest, &meta); err != nil {
		return fmt.Errorf("MANIFEST.json: %w", err)
	}
	if meta.Version != m.Version || meta.Target != a.Target.ID || meta.PythonVersion != a.Target.Python || meta.Accel != a.Target.Accel {
		return fmt.Errorf("MANIFEST.json says version %s target %s, the manifest says %s %s", meta.Version, meta.Target, m.Version, a.Target.ID)
	}
	return nil
}

// verifyBundle checks a bundle and says whom it was accepted from.
func verifyBundle(v *sign.Verifier, data, digest []byte) (string, error) {
	b, err := sign.ParseBundle(data)
	if err != nil {
		return "", err
	}
	return v.Check(b, "sha256", digest)
}

// open streams a file:// or http(s):// URL, or a plain path.
func (o Options) open(ctx context.Context, ref string) (io.ReadCloser, error) {
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" {
		return os.Open(ref)
	}
	switch u.Scheme {
	case "file":
		return os.Open(u.Path)
	case "https":
	case "http":
		if err := insecure.Check(ref, o.AllowInsecure); err != nil {
			return nil, fmt.Errorf("refusing %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported URL scheme in %s", ref)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", ref, resp.Status)
	}
	return resumable(ctx, o.HTTP, ref, resp), nil
}

const maxSmall = 16 << 20

func (o Options) fetchAll(ctx context.Context, ref string) ([]byte, error) {
	r, err := o.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxSmall+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	if len(data) > maxSmall {
		return nil, fmt.Errorf("%s is larger than %d bytes", ref, maxSmall)
	}
	return data, nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
