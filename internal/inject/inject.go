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
}

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
	urls := o.URLs
	for _, u := range urls {
		if err := checkURL(u, o.AllowInsecure); err != nil {
			return "", err
		}
	}
	if len(urls) == 0 {
		var err error
		if urls, err = URLs(a, o.AllowInsecure); err != nil { // checked as they are picked
			return "", err
		}
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
	ext, unpack, decompressor := "tar.gz", "tar -xzf", "gzip"
	switch a.Format {
	case "tar+gzip":
	case "tar+zstd":
		ext, unpack, decompressor = "tar.zst", "tar --zstd -xf", "zstd"
	default:
		return "", fmt.Errorf("target %s: format %q: %w", a.Target.ID, a.Format, ErrBadValue)
	}
	protos := "https"
	if o.AllowInsecure {
		protos = "https,http"
	}
	var buf bytes.Buffer
	err := scriptTemplate.Execute(&buf, map[string]any{
		"Version": version, "SHA256": a.SHA256, "URLs": strings.Join(urls, " "),
		"Size": a.Size, "Deadline": Deadline(a.Size),
		"FWDir": o.FWDir, "CacheDir": o.CacheDir, "Protos": protos, "Ext": ext, "Unpack": unpack,
		"Decompressor": decompressor,
		// Any blob's name: 64 characters, then the extension; names with a
		// character other than lower-case hex among the 64 are left out by
		// a second pattern, since one glob cannot say both in fewer bytes.
		"BlobGlob":   strings.Repeat("?", 64) + "." + ext,
		"GlibcMin":   fmt.Sprintf("%d.%d", GlibcMajor, GlibcMinor),
		"GlibcMajor": GlibcMajor, "GlibcMinor": GlibcMinor,
	})
	if err != nil {
		return "", fmt.Errorf("rendering the start script: %w", err)
	}
	return buf.String(), nil
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
