// Package coldstart measures container starts in real containers (podman,
// runc): the SDK's start command against fwrelease inject's script, cold,
// on a filled volume, restarted and upgraded, on a python:3.11-slim
// look-alike (python3 only) and on the same base with curl, beside the
// floor (the base's own start, the transfer at the link rate, extraction
// alone); and the same tree as the release's images (the overlay image on
// the slim look-alike and the mount image), pulled by podman from the
// loopback registry behind the same link, with the base on the host or
// absent, and upgraded; and inject --layers' script (the layers fetched
// from a GitHub channel behind the link). bench/run.sh coldstart runs it; it writes a
// Markdown section.
//
// It is a test so that it can use internal/containertest; it skips unless
// FWRELEASE_BENCH_COLDSTART names the file to write.
package coldstart

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runpod-workers/fwrelease/internal/containertest"
)

func TestMain(m *testing.M) { os.Exit(containertest.Main(m)) }

const rate = 50e6 // bytes per second, the link the tarballs are served at

// link is a line at rate: what is sent through it waits until the line
// would have carried it, concurrent responses sharing the rate, and it
// counts what it carried.
type link struct {
	mu   sync.Mutex
	free time.Time // when the line has carried everything sent so far
	sent atomic.Int64
}

// idle is how long the line must have been unused to start afresh. A
// sleep here overshoots by about a millisecond, a 64 KiB chunk's time at
// rate: restarting the line's clock after every overshoot ran a lone
// transfer at ~29 MB/s, not rate. Within idle the line keeps its
// schedule, so a transfer averages rate, in bursts of at most idle.
const idle = 20 * time.Millisecond

func (l *link) carry(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.free.Before(now.Add(-idle)) {
		l.free = now
	}
	l.free = l.free.Add(time.Duration(float64(n) / rate * float64(time.Second)))
	until := l.free
	l.mu.Unlock()
	l.sent.Add(int64(n))
	time.Sleep(time.Until(until))
}

// throttled serves a directory's files through its link, from memory
// once read (a file read from disk would add its read to every transfer).
type throttled struct {
	dir   string
	files sync.Map // name → []byte
	link
}

func (s *throttled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Path)
	v, ok := s.files.Load(name)
	if !ok {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		v, _ = s.files.LoadOrStore(name, data)
	}
	data := v.([]byte)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	for off := 0; off < len(data); off += 64 << 10 {
		end := min(off+64<<10, len(data))
		if _, err := w.Write(data[off:end]); err != nil {
			return
		}
		s.carry(end - off)
	}
}

// release is one snapshot release of the benchmark's tree; mount and
// overlay are its images in the snapshot's OCI layout (PATH@sha256:…).
type release struct {
	version, manifest, pub, file, sha256 string
	size                                 int64
	mount, overlay                       string
	workerLayer                          int64 // the mount image's worker layer, bytes
}

// build releases the tree as a snapshot; with a base (a registry's
// reference, "{python}" in it), the overlay image on it too.
func build(t *testing.T, fw, tree, work, version string, slim bool, base string) release {
	t.Helper()
	dir := filepath.Join(work, version+map[bool]string{true: "-slim", false: ""}[slim])
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "bootstrap.sh"), []byte("#!/bin/sh\necho bootstrap ran\n"), 0o755)
	cfg := filepath.Join(dir, "fwrelease.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: flash-worker
version: %q
source_date_epoch: 1767225600
matrix: {python: ["3.11"]}
files: [{src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}]
deps: {dir: %s}
slim: {enabled: %v}
images: {bases: {%s}}
`, version, tree, slim, map[bool]string{true: "cpu: " + strconv.Quote(base)}[base != ""])), 0o644)
	dist := filepath.Join(dir, "dist")
	if out, err := exec.Command(fw, "--allow-insecure", "--config", cfg, "--dist", dist, "release", "--snapshot").CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, out)
	}
	var m struct {
		Artifacts []struct {
			File   string `json:"file"`
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
			Layers []struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			} `json:"layers"`
			Images struct {
				Mount   string            `json:"mount"`
				Overlay map[string]string `json:"overlay"`
			} `json:"images"`
		} `json:"artifacts"`
	}
	data, _ := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || len(m.Artifacts) != 1 {
		t.Fatalf("%s/manifest.json: %v", dist, err)
	}
	a := m.Artifacts[0]
	var worker int64
	for _, l := range a.Layers {
		if l.Name == "worker" {
			worker = l.Size
		}
	}
	return release{workerLayer: worker, version: version, manifest: filepath.Join(dist, "manifest.json"), pub: filepath.Join(dist, "snapshot.pub"),
		file: filepath.Join(dist, a.File), sha256: a.SHA256, size: a.Size, mount: a.Images.Mount, overlay: a.Images.Overlay["cpu"]}
}

// served copies a release's tarball under a name of its own (the three
// releases share file names) and returns its URL.
func (r release) served(t *testing.T, dir, base string) string {
	name := fmt.Sprintf("%s-%s.tar.gz", r.version, r.sha256[:12])
	data, _ := os.ReadFile(r.file)
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
	return base + "/" + name
}

// ours is fwrelease inject's script for r, as the container's command.
func ours(t *testing.T, fw string, r release, url string) []string {
	t.Helper()
	out, err := exec.Command(fw, "--json", "--allow-insecure", "inject", "--manifest", r.manifest, "--key", r.pub,
		"--target", "py3.11-cpu-linux-x86_64", "--url", url).Output()
	var argv []string
	if err != nil || json.Unmarshal(out, &argv) != nil {
		t.Fatalf("inject: %v %s", err, out)
	}
	return argv
}

// sdk is the SDK's start command, as its injection generator
// (runpod_flash.core.resources.injection.build_injection_cmd) writes it.
func sdk(r release, url string) []string {
	return []string{"bash", "-c", "set -e; FW_DIR=/opt/flash-worker; FW_VER=" + r.version + "; " +
		`NV_CACHE="/runpod-volume/.flash-worker/v$FW_VER"; ` +
		`if [ -d "$NV_CACHE" ] && [ -f "$NV_CACHE/.version" ]; then cp -r "$NV_CACHE" "$FW_DIR"; ` +
		`elif [ -f "$FW_DIR/.version" ] && [ "$(cat $FW_DIR/.version)" = "$FW_VER" ]; then true; ` +
		`else mkdir -p $FW_DIR; DL_URL="` + url + `"; ` +
		`dl() { (command -v curl >/dev/null 2>&1 && curl -sSL "$1" || command -v wget >/dev/null 2>&1 && wget -qO- "$1" || ` +
		`python3 -c "import urllib.request,sys;sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())" "$1"); }; ` +
		`dl "$DL_URL" | tar xz -C $FW_DIR --strip-components=1; ` +
		`if [ -d /runpod-volume ]; then mkdir -p "$NV_CACHE" && cp -r "$FW_DIR"/* "$NV_CACHE/" 2>/dev/null || true; fi; fi; ` +
		`exec $FW_DIR/bootstrap.sh`}
}

// withCurl is base plus the host's curl and the libraries it needs that
// base lacks (the host is Debian bookworm, as the look-alikes are).
func withCurl(t *testing.T, rt *containertest.Runtime, base string) string {
	t.Helper()
	ref, _ := name.ParseReference(base, name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("reading %s: %v", base, err)
	}
	have := map[string]bool{}
	tr := tar.NewReader(mutate.Extract(img))
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		have[strings.TrimPrefix(h.Name, "./")] = true
	}
	out, err := exec.Command("ldd", "/usr/bin/curl").Output()
	if err != nil {
		t.Fatalf("ldd /usr/bin/curl (apt-get install curl): %v", err)
	}
	files := []string{"/usr/bin/curl"}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "=>" {
			files = append(files, f[2])
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		rel := strings.TrimPrefix(f, "/")
		if strings.HasPrefix(rel, "lib/") {
			rel = "usr/" + rel // merged /usr: /lib is a link to usr/lib
		}
		if have[rel] {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	withCurl, err := mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(rt.Registry()+"/bench/slim-3.11-curl:latest", name.Insecure)
	if err := remote.Write(tag, withCurl); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}
	return rt.Pull(t, tag.String())
}

// timed runs a created container once and returns its wall time; the
// worker's bootstrap.sh must have run.
func timed(t *testing.T, c *containertest.Container) time.Duration {
	t.Helper()
	start := time.Now()
	res := c.Run(t)
	took := time.Since(start)
	if res.Code != 0 || !strings.Contains(res.Stdout, "bootstrap ran") {
		t.Fatalf("container %s: exit %d\n%s\n%s", c.Name, res.Code, res.Stdout, res.Stderr)
	}
	return took
}

// startCase measures one case of a start command on image: "cold" (a new
// container on an empty volume), "volume" (a new container on the volume
// one filled), "restart" (the same container again: the median of five
// restarts, since a restart's spread here, ~20 ms, is larger than the
// differences between commands, which all start within a few ms of the
// base's own start), "upgrade" (a new container of up's
// command on the volume this version filled). It returns the time and the
// bytes sent through l.
func startCase(t *testing.T, rt *containertest.Runtime, l *link, image string, argv []string, up func() []string, k string) (time.Duration, int64) {
	t.Helper()
	opts := containertest.Options{Image: image, Cmd: argv, Volumes: []string{t.TempDir() + ":/runpod-volume"}}
	first := rt.Create(t, opts)
	if k != "cold" {
		timed(t, first) // fills the volume (and, for a restart, the tree)
	}
	measured := first
	switch k {
	case "volume":
		measured = rt.Create(t, opts)
	case "upgrade":
		opts.Cmd = up()
		measured = rt.Create(t, opts)
	}
	before := l.sent.Load()
	d := timed(t, measured)
	if k == "restart" {
		ds := []time.Duration{d}
		for len(ds) < restarts {
			ds = append(ds, timed(t, measured))
		}
		slices.Sort(ds)
		d = ds[len(ds)/2]
	}
	return d, l.sent.Load() - before
}

// restarts is how many restarts one restart sample is the median of.
const restarts = 5

type sample struct {
	times []time.Duration
	bytes []int64
}

func (s *sample) add(d time.Duration, b int64) {
	s.times = append(s.times, d)
	s.bytes = append(s.bytes, b)
}

func (s *sample) median() (float64, float64) {
	ts := append([]time.Duration(nil), s.times...)
	bs := append([]int64(nil), s.bytes...)
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	sort.Slice(bs, func(i, j int) bool { return bs[i] < bs[j] })
	return ts[len(ts)/2].Seconds(), float64(bs[len(bs)/2])
}

func TestColdStart(t *testing.T) {
	out := os.Getenv("FWRELEASE_BENCH_COLDSTART")
	if out == "" {
		t.Skip("a benchmark: bench/run.sh coldstart runs it (FWRELEASE_BENCH_COLDSTART=OUT.md, FWRELEASE_BIN, FWRELEASE_BENCH_TREE)")
	}
	fw, tree := os.Getenv("FWRELEASE_BIN"), os.Getenv("FWRELEASE_BENCH_TREE")
	runs, _ := strconv.Atoi(os.Getenv("FWRELEASE_BENCH_RUNS"))
	if runs == 0 {
		runs = 5
	}
	began := time.Now()
	rt := containertest.New(t)
	slim := rt.BaseImage(t, "slim-3.11")
	bases := []struct{ name, image string }{{"slim look-alike (python3 only)", slim}, {"slim look-alike + curl", withCurl(t, rt, slim)}}

	work := t.TempDir()
	onBase := rt.Registry() + "/fwrelease-test/slim-{python}:latest" // the overlay images' base, slim
	v1r, v2r := build(t, fw, tree, work, "1.0.0", false, onBase), build(t, fw, tree, work, "1.0.1", false, onBase)
	slimR := build(t, fw, tree, work, "1.0.0", true, "")
	srv := &throttled{dir: filepath.Join(work, "served")}
	os.Mkdir(srv.dir, 0o755)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, srv)
	base := "http://" + ln.Addr().String()
	u1, u2, uSlim := v1r.served(t, srv.dir, base), v2r.served(t, srv.dir, base), slimR.served(t, srv.dir, base)
	// The registry and the GitHub fake behind the same link as the tarballs.
	regVia := linkProxy(t, rt.Registry(), &srv.link)
	i1, i2 := v1r.push(t, rt.Registry(), regVia), v2r.push(t, rt.Registry(), regVia)
	rows := imageRows(slim, strings.Replace(slim, rt.Registry(), regVia, 1), i1, i2)
	l1, l2 := layeredScripts(t, fw, tree, work, &srv.link)

	commands := []struct {
		name     string
		cmd, up  func() []string // this release, and the next (upgrade)
		size     int64
		slimOnly bool
	}{
		{name: "SDK's command", cmd: func() []string { return sdk(v1r, u1) }, up: func() []string { return sdk(v2r, u2) }, size: v1r.size},
		{name: "`fwrelease inject`", cmd: func() []string { return ours(t, fw, v1r, u1) }, up: func() []string { return ours(t, fw, v2r, u2) }, size: v1r.size},
		{name: "`fwrelease inject`, slim tarball", cmd: func() []string { return ours(t, fw, slimR, uSlim) }, size: slimR.size, slimOnly: true},
		{name: layeredName, cmd: func() []string { return l1 }, up: func() []string { return l2 }, size: v1r.size, slimOnly: true},
	}
	cases := []string{"cold", "volume", "restart", "upgrade"}
	results := map[string]*sample{}
	key := func(b, c, k string) string { return b + "|" + c + "|" + k }
	t.Logf("setup (3 releases, the images pushed) took %s", time.Since(began).Round(time.Second))
	var fl floorRuns
	for i := 0; i < runs; i++ { // interleaved: each run measures every command, image and floor once
		runStart := time.Now()
		for _, b := range bases {
			rt.Pull(t, b.image) // the image rows of the run before emptied the storage
		}
		for _, b := range bases {
			for _, c := range commands {
				if c.slimOnly && b.image != slim {
					continue
				}
				argv := c.cmd()
				for _, k := range cases {
					if k == "upgrade" && c.up == nil {
						continue
					}
					s := results[key(b.name, c.name, k)]
					if s == nil {
						s = &sample{}
						results[key(b.name, c.name, k)] = s
					}
					s.add(startCase(t, rt, &srv.link, b.image, argv, c.up, k))
				}
			}
		}
		fl.measure(t, rt, slim, v1r, u1)
		measureImages(t, rt, &srv.link, rows, []string{i1.overlay, i1.mount, i2.overlay, i2.mount}, results)
		t.Logf("run %d took %s", i+1, time.Since(runStart).Round(time.Second))
	}
	writeReport(t, out, bases[0].name, bases, commands[0].name, results, key, fl.medians(), v1r, slimR, runs, rows)
	t.Logf("the benchmark took %s", time.Since(began).Round(time.Second))
}

// floors are the parts a start cannot avoid: the base's own start, the
// transfer at the link rate, extraction alone (the base's start taken off).
type floors struct{ base, transfer, extract float64 }

// floorRuns samples the floors once per run, among the starts they are
// compared with: this machine's speed drifts by 10-20% over a benchmark's
// minutes, and floors measured only at the end moved the "× floor" ratios
// by as much.
type floorRuns struct{ base, extract, transfer sample }

func (fl *floorRuns) measure(t *testing.T, rt *containertest.Runtime, image string, r release, url string) {
	fl.base.add(timed(t, rt.Create(t, containertest.Options{Image: image, Cmd: []string{"sh", "-c", "echo bootstrap ran"}})), 0)
	fl.extract.add(timed(t, rt.Create(t, containertest.Options{Image: image, Volumes: []string{r.file + ":/b.tar.gz:ro"},
		Cmd: []string{"sh", "-c", "mkdir /opt/x && tar -xzf /b.tar.gz -C /opt/x && echo bootstrap ran"}})), 0)
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fl.transfer.add(time.Since(start), 0)
}

func (fl *floorRuns) medians() floors {
	b, _ := fl.base.median()
	xs, _ := fl.extract.median()
	ts, _ := fl.transfer.median()
	return floors{base: b, transfer: ts, extract: xs - b}
}

func writeReport(t *testing.T, out, slimBase string, bases []struct{ name, image string }, sdkName string,
	results map[string]*sample, key func(b, c, k string) string, f floors, full, slim release, runs int, rows []imageRow) {
	var b strings.Builder
	storage := os.Getenv("FWRELEASE_BENCH_STORAGE")
	floor := f.base + max(f.transfer, f.extract)
	fmt.Fprintf(&b, "Container storage and volume on %s; tarballs %.1f MB (unslimmed) and %.1f MB (slim), served at %.0f MB/s from 127.0.0.1; medians of %d interleaved runs (a restart in each run the median of %d restarts of the container); time from `podman start` to the worker's exit (its bootstrap.sh prints one line).\n\n",
		storage, float64(full.size)/1e6, float64(slim.size)/1e6, rate/1e6, runs, restarts)
	fmt.Fprintf(&b, "| base | start command | case | time (s) | × SDK | × floor | downloaded (MB) |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	names := []string{sdkName, "`fwrelease inject`", "`fwrelease inject`, slim tarball", layeredName}
	for _, base := range bases {
		for _, c := range names {
			for _, k := range []string{"cold", "volume", "restart", "upgrade"} {
				s := results[key(base.name, c, k)]
				if s == nil {
					continue
				}
				tm, by := s.median()
				sdkT, _ := results[key(base.name, sdkName, k)].median()
				fl := "—"
				if k == "cold" || k == "upgrade" {
					fl = fmt.Sprintf("%.2f", tm/floor)
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %.2f | %s | %.3f |\n", base.name, c, k, tm, tm/sdkT, fl, by/1e6)
			}
		}
	}
	writeImages(&b, rows, results, func(kind string) float64 { v, _ := results[key(slimBase, sdkName, kind)].median(); return v }, floor, full)
	fmt.Fprintf(&b, "\nFloor (unslimmed tarball): the base's start %.3f s; the transfer alone at the link rate %.3f s; extraction alone %.3f s (in a container, its start taken off); each the median of one sample per run, taken among that run's starts; floor = start + the longer of the two = %.3f s.\n\n",
		f.base, f.transfer, f.extract, floor)
	get := func(c, k string) float64 { v, _ := results[key(slimBase, c, k)].median(); return v }
	row := func(what string, v, limit float64) {
		verdict := "met"
		if v > limit {
			verdict = "**not met**"
		}
		fmt.Fprintf(&b, "| %s | %.2f | ≤ %.1f | %s |\n", what, v, limit, verdict)
	}
	fmt.Fprintf(&b, "| target (slim look-alike, %s) | this run | target | |\n| --- | --- | --- | --- |\n", storage)
	row("inject cold × SDK cold", get(names[1], "cold")/get(sdkName, "cold"), 0.6)
	row("inject cold × floor", get(names[1], "cold")/floor, 1.3)
	row("inject volume hit × SDK's second container on the volume", get(names[1], "volume")/get(sdkName, "volume"), 0.4)
	row("inject restart × SDK restart", get(names[1], "restart")/get(sdkName, "restart"), 1.0)
	if results[key(slimBase, layeredName, "cold")] != nil {
		row("inject --layers cold × SDK cold", get(layeredName, "cold")/get(sdkName, "cold"), 0.6)
		row("inject --layers cold × floor", get(layeredName, "cold")/floor, 1.3)
		row("inject --layers volume hit × SDK's second container on the volume", get(layeredName, "volume")/get(sdkName, "volume"), 0.4)
		row("inject --layers restart × SDK restart", get(layeredName, "restart")/get(sdkName, "restart"), 1.0)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
