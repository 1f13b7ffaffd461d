package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// fakeChannel is a channel in memory that records every call, in one log
// shared by all channels, so a test can read the order a pipeline keeps.
type fakeChannel struct {
	name    string
	calls   *[]string
	store   map[string][]byte
	uploads int
	// failKey makes the next Publish of that key fail.
	failKey string
}

var (
	_ publish.Publisher   = (*fakeChannel)(nil)
	_ publish.Reader      = (*fakeChannel)(nil)
	_ publish.Preflighter = (*fakeChannel)(nil)
	_ publish.Finalizer   = (*fakeChannel)(nil)
	_ publish.LatestMover = (*fakeChannel)(nil)
)

func newFake(name string, calls *[]string) *fakeChannel {
	return &fakeChannel{name: name, calls: calls, store: map[string][]byte{}}
}

func (f *fakeChannel) Name() string { return f.name }

func (f *fakeChannel) log(format string, args ...any) {
	*f.calls = append(*f.calls, f.name+" "+fmt.Sprintf(format, args...))
}

func (f *fakeChannel) Publish(_ context.Context, obj artifact.Artifact) (artifact.Location, error) {
	f.log("publish %s", obj.File)
	if obj.Key() == f.failKey {
		f.failKey = ""
		return artifact.Location{}, errors.New("connection reset")
	}
	data, err := os.ReadFile(obj.Path)
	if err != nil {
		return artifact.Location{}, err
	}
	at := artifact.Location{Channel: f.name, URL: f.URL(obj.Key())}
	if have, ok := f.store[obj.Key()]; ok {
		if !bytes.Equal(have, data) {
			return artifact.Location{}, publish.ErrExists
		}
		return at, nil
	}
	f.store[obj.Key()] = data
	f.uploads++
	return at, nil
}

func (f *fakeChannel) URL(key string) string { return "https://" + f.name + ".example/" + key }

func (f *fakeChannel) Fetch(_ context.Context, key string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.store[key])), nil
}

func (f *fakeChannel) Preflight(objs []artifact.Artifact) error {
	f.log("preflight %d", len(objs))
	return nil
}

func (f *fakeChannel) Finalize(_ context.Context, version string) error {
	f.log("finalize %s", version)
	return nil
}

func (f *fakeChannel) MoveLatest(_ context.Context, version string, _ []byte) (bool, error) {
	f.log("latest %s", version)
	return true, nil
}

var targets = []manifest.Target{
	{ID: "py3.11-cpu-linux-x86_64", Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"},
	{ID: "py3.12-cpu-linux-x86_64", Python: "3.12", Accel: "cpu", OS: "linux", Arch: "x86_64"},
}

// built writes what `fwrelease build` leaves: a tarball and a shard per
// target (the tarballs' bytes do not matter to the pipeline).
func built(t *testing.T, dir string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "shards"), 0o755)
	for _, tg := range targets {
		file := "flash-worker-v1.2.0-py" + tg.Python + "-linux-x86_64.tar.gz"
		data := []byte("tarball of " + tg.ID)
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		s := manifest.Shard{
			Artifact: manifest.Artifact{Target: tg, File: file, Format: "tar+gzip", StripComponents: 1,
				Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), URLs: []string{}, Layers: builtLayers(t, dir, tg.ID)},
			Release: manifest.Release{Name: "flash-worker", Version: "1.2.0", Created: "2026-01-01T00:00:00Z",
				Source: manifest.Source{Repository: "runpod-workers/flash", Commit: strings.Repeat("a", 40), Tag: "v1.2.0"}},
		}
		if err := manifest.WriteFile(filepath.Join(dir, "shards", tg.ID+".json"), s); err != nil {
			t.Fatal(err)
		}
	}
}

// builtLayers writes a target's two mount layer files where the build
// leaves them and lists them as its shard does.
func builtLayers(t *testing.T, dir, id string) []manifest.Layer {
	t.Helper()
	var out []manifest.Layer
	for _, name := range []string{"deps", "worker"} {
		data := []byte(name + " layer of " + id)
		p := filepath.Join(build.LayerDir(dir, id, "mount"), name+".tar.gz")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		out = append(out, manifest.Layer{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))})
	}
	return out
}

// keyed makes a key, and the checker a re-run keeps signatures with.
func keyed(t *testing.T, chans ...publish.Publisher) Publishing {
	t.Helper()
	sv, err := sign.Ephemeral()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.New(context.Background(), sv)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := s.PublicKeyPEM()
	v, err := sign.NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return Publishing{Channels: publish.NewSet(nil, chans...), Signer: s, Verifier: v}
}

func readRelease(t *testing.T, dir string) *Release {
	t.Helper()
	r, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, r *Release, p Publishing) error {
	t.Helper()
	return Run(context.Background(), discard, PublishOnly(r, p))
}

var discard = slog.New(slog.DiscardHandler)

// The pipeline's order is the contract: every artifact on every channel,
// then the signatures, then the manifest (its signature first), then the
// releases made visible, then latest.
func TestPublishOrder(t *testing.T) {
	dir := t.TempDir()
	built(t, dir)
	var calls []string
	a, b := newFake("a", &calls), newFake("b", &calls)
	p := keyed(t, a, b)
	r := readRelease(t, dir)

	var names []string
	for _, s := range PublishOnly(r, p) {
		names = append(names, s.String())
	}
	wantSteps := []string{"sign artifacts", "check the layer files", "check the artifacts fit every channel",
		"publish artifacts to a", "publish artifacts to b", "publish signatures to a", "publish signatures to b",
		"publish the images", "index the artifacts", "write, sign and publish the manifest", "publish the releases", "move latest"}
	if !slices.Equal(names, wantSteps) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(wantSteps, "\n"))
	}

	if err := run(t, r, p); err != nil {
		t.Fatal(err)
	}
	f1, f2 := "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz", "flash-worker-v1.2.0-py3.12-linux-x86_64.tar.gz"
	l1, l2 := "flash-worker-v1.2.0-py3.11-linux-x86_64.", "flash-worker-v1.2.0-py3.12-linux-x86_64."
	tarballs := []string{f1, l1 + "deps.layer.tar.gz", l1 + "worker.layer.tar.gz", f2, l2 + "deps.layer.tar.gz", l2 + "worker.layer.tar.gz"}
	want := []string{"a preflight 6", "b preflight 6"}
	for _, ch := range []string{"a ", "b "} {
		for _, f := range tarballs {
			want = append(want, ch+"publish "+f)
		}
	}
	want = append(want,
		"a publish "+f1+".sigstore.json", "a publish "+f2+".sigstore.json",
		"b publish "+f1+".sigstore.json", "b publish "+f2+".sigstore.json",
		"a publish manifest.json.sigstore.json", "a publish manifest.json",
		"b publish manifest.json.sigstore.json", "b publish manifest.json",
		"a finalize 1.2.0", "b finalize 1.2.0", "a latest 1.2.0", "b latest 1.2.0",
	)
	if !slices.Equal(calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	art := r.Manifest.Artifacts[0]
	if !slices.Equal(art.URLs, []string{a.URL("v1.2.0/" + f1), b.URL("v1.2.0/" + f1)}) {
		t.Errorf("urls %v", art.URLs)
	}
	if want := map[string]string{"a": art.URLs[0], "b": art.URLs[1]}; !maps.Equal(art.Channels, want) {
		t.Errorf("channels %v, want %v", art.Channels, want)
	}
	if art.Signature == nil || len(art.Signature.URLs) != 2 {
		t.Errorf("signature %+v", art.Signature)
	}
	// Each layer's urls are its file beside the tarball on each channel,
	// and the layer keeps its digest and size.
	for _, l := range art.Layers {
		key := "v1.2.0/" + l1 + l.Name + ".layer.tar.gz"
		if !slices.Equal(l.URLs, []string{a.URL(key), b.URL(key)}) {
			t.Errorf("layer %s urls %v", l.Name, l.URLs)
		}
		if sum := sha256.Sum256(a.store[key]); "sha256:"+hex.EncodeToString(sum[:]) != l.Digest || int64(len(a.store[key])) != l.Size {
			t.Errorf("layer %s: the published file is not %s, %d bytes", l.Name, l.Digest, l.Size)
		}
	}
}

// A layer file that is not what its shard lists is refused before
// anything is published, naming the file.
func TestTamperedLayerFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	built(t, dir)
	p := filepath.Join(build.LayerDir(dir, "py3.12-cpu-linux-x86_64", "mount"), "worker.tar.gz")
	if err := os.WriteFile(p, []byte("not the worker layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls []string
	err := run(t, readRelease(t, dir), keyed(t, newFake("a", &calls)))
	if err == nil || !strings.Contains(err.Error(), "py3.12-cpu-linux-x86_64") || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v, want one naming the target and %s", err, p)
	}
	if len(calls) != 0 {
		t.Errorf("published before the layer files were checked: %v", calls)
	}
}

// A failure in the middle (a dropped upload of a signature on the second
// channel) stops the release before the manifest: no channel shows a
// manifest or a moved latest. The same command run again converges,
// re-uploading nothing that is already there.
func TestFailureInTheMiddleThenRerun(t *testing.T) {
	dir := t.TempDir()
	built(t, dir)
	var calls []string
	a, b := newFake("a", &calls), newFake("b", &calls)
	b.failKey = "v1.2.0/flash-worker-v1.2.0-py3.12-linux-x86_64.tar.gz.sigstore.json"
	p := keyed(t, a, b)

	err := run(t, readRelease(t, dir), p)
	if err == nil || !strings.Contains(err.Error(), "publish signatures to b: py3.12-cpu-linux-x86_64: connection reset") {
		t.Fatalf("error %v", err)
	}
	for _, c := range calls {
		if strings.Contains(c, "manifest.json") || strings.Contains(c, "finalize") || strings.Contains(c, "latest") {
			t.Errorf("after the failure: %s", c)
		}
	}
	if _, ok := a.store["v1.2.0/manifest.json"]; ok {
		t.Error("a shows a manifest of a half-published release")
	}

	before := a.uploads + b.uploads
	calls = nil
	r := readRelease(t, dir)
	if err := run(t, r, p); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	// Only what was missing is uploaded: b's last signature, and each
	// channel's manifest and its signature.
	if n := a.uploads + b.uploads - before; n != 5 {
		t.Errorf("the re-run uploaded %d objects, want 5", n)
	}
	if !slices.Contains(calls, "b latest 1.2.0") || r.Manifest == nil {
		t.Errorf("the re-run did not finish: %v", calls)
	}
}

// Re-running a finished release with new signatures (signing differs run
// to run) keeps the published ones, which are valid, and changes nothing.
func TestRerunKeepsPublishedSignatures(t *testing.T) {
	dir := t.TempDir()
	built(t, dir)
	var calls []string
	a := newFake("a", &calls)
	p := keyed(t, a)
	first := readRelease(t, dir)
	if err := run(t, first, p); err != nil {
		t.Fatal(err)
	}
	published := a.store["v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz.sigstore.json"]
	uploads := a.uploads

	// Sign everything again, with the same key: other bytes.
	second := readRelease(t, dir)
	if err := Run(context.Background(), discard, Full(second, noBuild{}, nil, p)); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if a.uploads != uploads {
		t.Errorf("the re-run uploaded %d objects", a.uploads-uploads)
	}
	if !bytes.Equal(a.store["v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz.sigstore.json"], published) {
		t.Error("the published signature was replaced")
	}
	if !slices.Equal(first.Manifest.Artifacts[0].URLs, second.Manifest.Artifacts[0].URLs) {
		t.Errorf("urls changed: %v then %v", first.Manifest.Artifacts[0].URLs, second.Manifest.Artifacts[0].URLs)
	}

	// A signature by another key is not kept: the published one does not
	// verify with the new key.
	err := Run(context.Background(), discard, Full(readRelease(t, dir), noBuild{}, nil, keyed(t, a)))
	if !errors.Is(err, publish.ErrExists) || !strings.Contains(err.Error(), "not a valid signature") {
		t.Errorf("another key's re-run: %v", err)
	}
}

// noBuild stands for the build step when the tarballs are already there.
type noBuild struct{}

func (noBuild) Build(context.Context, []target.Target) ([]artifact.Artifact, error) { return nil, nil }

// Steps that need the manifest say so rather than fail obscurely.
func TestStepsNeedTheManifest(t *testing.T) {
	var calls []string
	ch := publish.NewSet(nil, newFake("a", &calls))
	for _, s := range []Step{&FinalizeStep{Channels: ch, Release: &Release{}}, &LatestStep{Channels: ch, Release: &Release{}}} {
		if err := s.Run(context.Background()); !errors.Is(err, errNoManifest) {
			t.Errorf("%s without a manifest: %v", s, err)
		}
	}
	if len(calls) != 0 {
		t.Errorf("calls %v", calls)
	}
}

// A dry run is a set of its own: every step runs, nothing is stored,
// nothing is made visible, latest does not move, and the manifest still
// names where each file would be.
func TestDryRunPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	built(t, dir)
	var calls []string
	a := newFake("a", &calls)
	p := keyed(t, a)
	var said []string
	p.Channels = p.Channels.DryRun(func(msg string, args ...any) { said = append(said, fmt.Sprint(msg, args)) })
	r := readRelease(t, dir)
	if err := run(t, r, p); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a preflight 6"}; !slices.Equal(calls, want) {
		t.Errorf("calls %v, want only %v", calls, want)
	}
	if len(said) != 10 { // two tarballs, their four layer files, two bundles, the manifest and its bundle
		t.Errorf("the dry run said %d things:\n%s", len(said), strings.Join(said, "\n"))
	}
	if u := r.Manifest.Artifacts[0].URLs; len(u) != 1 || u[0] != a.URL("v1.2.0/"+r.Manifest.Artifacts[0].File) {
		t.Errorf("urls %v", u)
	}
	if u := r.Manifest.Artifacts[0].Layers[0].URLs; len(u) != 1 || u[0] != a.URL("v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.deps.layer.tar.gz") {
		t.Errorf("layer urls %v", u)
	}
}
