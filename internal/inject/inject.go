// Package inject renders the container start script that downloads,
// verifies, caches and runs one target's flash-worker tarball. The contract
// it implements is docs/start-script.md.
//
// The script runs at every container start on base images we do not
// control (bash or dash, curl or wget or only python3, maybe no sha256sum),
// next to other containers sharing one network volume. Every value put into
// it is checked here so that no manifest or flag can change what it does.
package inject

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

const (
	DefaultFWDir    = "/opt/flash-worker"
	DefaultCacheDir = "/runpod-volume/.flash-worker"
)

// The oldest glibc the released wheels and interpreters run on: the
// manylinux_2_28 tag the build installs for.
const GlibcMajor, GlibcMinor = 2, 28

// Deadline is how many seconds the start script gives one download of size
// bytes before it tries the next URL: 20 s, plus the time the bytes take at
// 128 KiB/s. A mirror slower than that on average, or one that sends an
// endless body, costs one deadline, never the start.
func Deadline(size int64) int64 {
	return 20 + size/(128<<10)
}

// Options are what varies between containers and tests.
type Options struct {
	URLs          []string // tried in order; default: the artifact's https URLs
	FWDir         string   // default DefaultFWDir
	CacheDir      string   // default DefaultCacheDir
	AllowInsecure bool     // also plain-http loopback URLs (tests, local mirrors)
	// Layers makes the script fetch the artifact's layers, each from its
	// own URLs and cached by its digest, instead of the tarball.
	Layers bool
}

// blob is one file the script fetches, verifies and extracts: the tarball,
// or one layer.
type blob struct {
	Hex            string
	Size, Deadline int64
	URLs           []string // each checked
	// Blob and Tar are its names on the volume, "-" for none: Blob the
	// download itself (a tarball's "<sha256>.tar.gz", as the contract
	// keeps it), Tar its uncompressed stream of Unpacked bytes ("<diff ID
	// hex>.tar", a layer's only copy), which a hit tries first since it
	// needs no decompression.
	Blob, Tar string
	Unpacked  int64
}

// glob finds one kind of blob on the volume for prune: 64 characters, then
// the extension; names with a character other than lower-case hex among
// the 64 are left out by a second pattern, since one glob cannot say both
// in fewer bytes.
type glob struct{ Glob, Ext string }

func globFor(ext string) glob { return glob{strings.Repeat("?", 64) + "." + ext, ext} }

// Sentinel errors, so callers can tell bad input from a broken template.
var (
	ErrNoURL    = errors.New("no usable URL")
	ErrBadValue = errors.New("cannot be put in a start script")
)

var (
	hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// URL characters less quotes, "$", "`", "\\", brackets, spaces and the
	// glob characters "*" and "[": enough for presigned URLs, too little to
	// break out of double quotes or to be expanded by the shell.
	urlCharsRE = regexp.MustCompile(`^[A-Za-z0-9._~:/?#@!&+,;=%-]+$`)
	dirRE      = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)
)

// ValidVersion reports whether v is a semantic version, as a release's
// version must be before it reaches a script or a file name.
func ValidVersion(v string) error {
	if !manifest.IsSemver(v) {
		return fmt.Errorf("version %q is not a semantic version (X.Y.Z): %w", v, ErrBadValue)
	}
	return nil
}

// URLs picks the artifact's URLs a container may download from: https, or
// plain-http loopback when allowInsecure. file:// and other schemes are
// dropped; an artifact left with none is an error naming it.
func URLs(a *manifest.Artifact, allowInsecure bool) ([]string, error) {
	var urls []string
	for _, u := range a.URLs {
		if checkURL(u, allowInsecure) == nil {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("target %s: %w for a container in the manifest (it has %s); publish to https, or pass --url",
			a.Target.ID, ErrNoURL, strings.Join(a.URLs, ", "))
	}
	return urls, nil
}

// Script renders the start script for artifact a of a release of version.
func Script(version string, a *manifest.Artifact, o Options) (string, error) {
	if o.FWDir == "" {
		o.FWDir = DefaultFWDir
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if err := ValidVersion(version); err != nil {
		return "", err
	}
	for _, d := range [...]struct{ flag, dir string }{{"--fw-dir", o.FWDir}, {"--cache-dir", o.CacheDir}} {
		flag, dir := d.flag, d.dir
		if !dirRE.MatchString(dir) || path.Clean(dir) != dir || path.Dir(dir) == "/" {
			return "", fmt.Errorf("%s %q: want a clean absolute path below a top-level directory, of letters, digits and . _ -: %w", flag, dir, ErrBadValue)
		}
	}
	if !hexRE.MatchString(a.SHA256) {
		return "", fmt.Errorf("target %s: sha256 %q is not 64 lower-case hex digits: %w", a.Target.ID, a.SHA256, ErrBadValue)
	}
	if a.StripComponents != 1 {
		return "", fmt.Errorf("target %s: strip_components %d, want 1: %w", a.Target.ID, a.StripComponents, ErrBadValue)
	}
	if a.Size <= 0 {
		return "", fmt.Errorf("target %s: size %d: %w", a.Target.ID, a.Size, ErrBadValue)
	}
	// The decompressor runs in the pipe rather than under tar -z: GNU tar
	// reading a compressed archive from a pipe feeds its decompressor
	// through a process of its own in 10 KiB records, which costs a third
	// more CPU and four times the context switches.
	// A blob off the volume is copied into the private directory and
	// unpacked from there, where tar -z lets gzip read the file itself.
	ext, unpackFile, decompressor := "tar.gz", "tar -xzf", "gzip"
	switch a.Format {
	case "tar+gzip":
	case "tar+zstd":
		ext, unpackFile, decompressor = "tar.zst", "tar --zstd -xf", "zstd"
	default:
		return "", fmt.Errorf("target %s: format %q: %w", a.Target.ID, a.Format, ErrBadValue)
	}
	blobs, err := tarballBlob(a, ext, o)
	strip := 1
	if o.Layers { // gzip layers, the tree at their root, kept uncompressed
		unpackFile, decompressor, strip = "tar -xf", "gzip", 0
		blobs, err = layerBlobs(a, o)
	}
	if err != nil {
		return "", err
	}
	// prune keeps this release's files on the volume and the two used
	// before them; it knows each kind by its glob.
	var globs []glob
	files := 0
	for _, b := range blobs {
		for _, name := range []string{b.Blob, b.Tar} {
			if name == "-" {
				continue
			}
			files++
			if g := globFor(strings.SplitN(name, ".", 2)[1]); !slices.Contains(globs, g) {
				globs = append(globs, g)
			}
		}
	}
	tries := 0
	for _, b := range blobs {
		tries = max(tries, len(b.URLs))
	}
	protos := "https"
	if o.AllowInsecure {
		protos = "https,http"
	}
	var buf bytes.Buffer
	err = scriptTemplate.Execute(&buf, map[string]any{
		"Version": version, "SHA256": a.SHA256, "Blobs": blobs, "Layers": o.Layers, "Strip": strip,
		// Each pass over the blobs takes every blob's n-th URL (or its
		// last); tail -n +Keep leaves the newest Keep-1 files.
		"Tries": positions(tries), "Keep": files + 3, "Globs": globs,
		"FWDir": o.FWDir, "CacheDir": o.CacheDir, "Protos": protos, "UnpackFile": unpackFile,
		"Decompressor": decompressor,
		"GlibcMin":     fmt.Sprintf("%d.%d", GlibcMajor, GlibcMinor),
		"GlibcMajor":   GlibcMajor, "GlibcMinor": GlibcMinor,
	})
	if err != nil {
		return "", fmt.Errorf("rendering the start script: %w", err)
	}
	return buf.String(), nil
}

// positions are "1 2 … n".
func positions(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = strconv.Itoa(i + 1)
	}
	return strings.Join(p, " ")
}

// tarballBlob is the artifact's tarball from o.URLs, else from its own;
// its uncompressed stream is kept on the volume too when the manifest
// records it (diff_id and tar_size).
func tarballBlob(a *manifest.Artifact, ext string, o Options) ([]blob, error) {
	urls := o.URLs
	for _, u := range urls {
		if err := checkURL(u, o.AllowInsecure); err != nil {
			return nil, err
		}
	}
	if len(urls) == 0 {
		var err error
		if urls, err = URLs(a, o.AllowInsecure); err != nil { // checked as they are picked
			return nil, err
		}
	}
	b := blob{Hex: a.SHA256, Size: a.Size, Deadline: Deadline(a.Size), URLs: urls, Blob: a.SHA256 + "." + ext, Tar: "-"}
	if a.DiffID != "" || a.TarSize != 0 {
		diff, ok := strings.CutPrefix(a.DiffID, "sha256:")
		if !ok || !hexRE.MatchString(diff) || a.TarSize <= 0 {
			return nil, fmt.Errorf("target %s: diff_id %q and tar_size %d are not a sha256: digest and a size: %w", a.Target.ID, a.DiffID, a.TarSize, ErrBadValue)
		}
		b.Tar, b.Unpacked = diff+".tar", a.TarSize
	}
	return []blob{b}, nil
}

// layerBlobs are the artifact's layers, in order, each from its own URLs
// (o.URLs name the tarball's mirrors, so they do not apply).
func layerBlobs(a *manifest.Artifact, o Options) ([]blob, error) {
	if len(o.URLs) > 0 {
		return nil, fmt.Errorf("target %s: a URL given for the tarball (%s) does not apply to its layers, which are fetched from their own URLs in the manifest: %w",
			a.Target.ID, strings.Join(o.URLs, ", "), ErrBadValue)
	}
	if len(a.Layers) == 0 {
		return nil, fmt.Errorf("target %s: the manifest lists no layers: %w", a.Target.ID, ErrBadValue)
	}
	var blobs []blob
	for _, l := range a.Layers {
		hex, ok := strings.CutPrefix(l.Digest, "sha256:")
		if !ok || !hexRE.MatchString(hex) {
			return nil, fmt.Errorf("target %s: layer %q: digest %q is not sha256: and 64 lower-case hex digits: %w", a.Target.ID, l.Name, l.Digest, ErrBadValue)
		}
		if l.Size <= 0 {
			return nil, fmt.Errorf("target %s: layer %q: size %d: %w", a.Target.ID, l.Name, l.Size, ErrBadValue)
		}
		diff, ok := strings.CutPrefix(l.DiffID, "sha256:")
		if !ok || !hexRE.MatchString(diff) || l.TarSize <= 0 {
			return nil, fmt.Errorf("target %s: layer %q: diff_id %q and tar_size %d are not a sha256: digest and a size (a manifest written before fwrelease recorded them; release again): %w",
				a.Target.ID, l.Name, l.DiffID, l.TarSize, ErrBadValue)
		}
		var urls []string
		for _, u := range l.URLs {
			if checkURL(u, o.AllowInsecure) == nil {
				urls = append(urls, u)
			}
		}
		if len(urls) == 0 {
			return nil, fmt.Errorf("target %s: layer %q: %w for a container in the manifest (it has %s); publish the layers to https",
				a.Target.ID, l.Name, ErrNoURL, strings.Join(l.URLs, ", "))
		}
		blobs = append(blobs, blob{Hex: hex, Size: l.Size, Deadline: Deadline(l.Size), URLs: urls, Blob: "-", Tar: diff + ".tar", Unpacked: l.TarSize})
	}
	return blobs, nil
}

// checkURL admits what a container may fetch: https (or loopback http when
// allowed), in characters that need no quoting, and never anything a
// downloader could read as an option.
func checkURL(raw string, allowInsecure bool) error {
	if strings.HasPrefix(raw, "-") || !urlCharsRE.MatchString(raw) {
		return fmt.Errorf("URL %q: %w (characters outside a URL's, or a leading -)", raw, ErrBadValue)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("URL %q: not an absolute URL: %w", raw, ErrBadValue)
	}
	if err := insecure.Check(raw, allowInsecure); err != nil {
		return fmt.Errorf("%w: %w", err, ErrBadValue)
	}
	return nil
}

// DockerArgs wraps a script as the endpoint template's dockerArgs: a string
// that Python's shlex.split turns into ["bash", "-c", script] and that
// `sh -c "$DOCKER_ARGS"` runs.
func DockerArgs(script string) string {
	return "bash -c " + shellQuote(script)
}

// shellQuote is POSIX single quoting, as Python's shlex.quote does it.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// The script lives in its own file so it reads as shell; it is kept free of
// single quotes and comments, since its every byte sits in each endpoint
// template (docs/start-script.md explains each step).
//
//go:embed start.sh.tmpl
var scriptText string

var scriptTemplate = template.Must(template.New("start").Option("missingkey=error").Parse(scriptText))
