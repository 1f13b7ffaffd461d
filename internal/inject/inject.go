// Package inject writes the container start command that downloads,
// verifies, caches and runs a flash-worker tarball (DESIGN §8).
//
// The command has to be right in every image the SDK meets: it must never
// run a corrupted, truncated or missing download, must work without curl
// (python:3.11-slim), without wget, without sha256sum, and must keep the
// network volume's cache consistent when containers race.
package inject

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// Options are what varies between containers and tests.
type Options struct {
	URLs     []string // tried in order; default: the artifact's https URLs
	FWDir    string   // default /opt/flash-worker
	CacheDir string   // default /runpod-volume/.flash-worker
}

const (
	DefaultFWDir    = "/opt/flash-worker"
	DefaultCacheDir = "/runpod-volume/.flash-worker"
)

var (
	// URL characters less quotes, "$", "`", "\\", brackets, "*" and spaces:
	// enough for presigned URLs, too little to break out of the quoting.
	safeValue = regexp.MustCompile(`^[A-Za-z0-9._~:/?#@!&+,;=%-]+$`)
	hexRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Command returns the start command for one artifact of m.
func Command(m *manifest.Manifest, a *manifest.Artifact, o Options) (string, error) {
	if o.FWDir == "" {
		o.FWDir = DefaultFWDir
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	urls := o.URLs
	if len(urls) == 0 {
		for _, u := range a.URLs {
			if strings.HasPrefix(u, "https://") {
				urls = append(urls, u)
			}
		}
	}
	if len(urls) == 0 {
		return "", fmt.Errorf("target %s has no https URL in the manifest; pass --url", a.Target.ID)
	}
	// Everything interpolated is checked to need no quoting, so the script
	// cannot be broken (or subverted) by what the manifest says.
	values := append([]string{m.Version, o.FWDir, o.CacheDir}, urls...)
	for _, v := range values {
		if !safeValue.MatchString(v) {
			return "", fmt.Errorf("%q cannot be put in a start command safely", v)
		}
	}
	if !hexRE.MatchString(a.SHA256) {
		return "", errors.New("the manifest's sha256 is not 64 lower-case hex digits")
	}
	unpack := "tar -xzf"
	if a.Format == "tar+zstd" {
		unpack = "tar --zstd -xf"
	}
	var buf bytes.Buffer
	err := script.Execute(&buf, map[string]any{
		"Version": m.Version, "URLs": strings.Join(urls, " "), "SHA256": a.SHA256,
		"FWDir": strings.TrimRight(o.FWDir, "/"), "CacheDir": strings.TrimRight(o.CacheDir, "/"),
		"Strip": a.StripComponents, "Unpack": unpack,
	})
	return buf.String(), err
}

// The script is POSIX sh (bash runs it too). Each step is a function so
// the flow at the bottom reads as the policy: in place? cached? download.
var script = template.Must(template.New("start").Parse(`set -euf
FW_VERSION='{{.Version}}'
FW_URLS='{{.URLs}}'
FW_SHA256='{{.SHA256}}'
FW_DIR='{{.FWDir}}'
FW_CACHE='{{.CacheDir}}/v{{.Version}}'

fw_log() { echo "flash-worker: $*" >&2; }
fw_die() { fw_log "$*"; exit 1; }

# A tree is usable only if it is this version and has its entry point.
fw_ready() {
  [ -f "$1/.version" ] && [ "$(cat "$1/.version")" = "$FW_VERSION" ] && [ -x "$1/bootstrap.sh" ]
}

# fw_get URL FILE: curl, else wget, else python3; each fails on HTTP errors.
fw_get() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --connect-timeout 10 --max-time 600 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 30 -t 1 -O "$2" "$1"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)' "$1" "$2"
  else
    fw_die "no curl, wget or python3 to download with"
  fi
}

fw_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# fw_install SRC_TREE: move a verified tree into FW_DIR in one rename.
fw_install() {
  rm -rf "$FW_DIR"
  mv "$1" "$FW_DIR"
}

# Download (every URL, three rounds), verify the digest, extract into a
# temporary directory, check it, then rename into place.
fw_download() {
  work=$(mktemp -d "$FW_DIR.download.XXXXXX")
  for round in 1 2 3; do
    for url in $FW_URLS; do
      rm -f "$work/fw.tar"
      if fw_get "$url" "$work/fw.tar"; then
        got=$(fw_sha256 "$work/fw.tar")
        if [ "$got" = "$FW_SHA256" ]; then
          mkdir "$work/tree"
          {{.Unpack}} "$work/fw.tar" -C "$work/tree" --strip-components={{.Strip}} --no-same-owner ||
            { rm -rf "$work"; fw_die "extracting $url failed"; }
          fw_ready "$work/tree" || { rm -rf "$work"; fw_die "$url holds no flash-worker $FW_VERSION"; }
          fw_install "$work/tree"
          rm -rf "$work"
          return 0
        fi
        fw_log "$url: sha256 $got, want $FW_SHA256; not using it"
      else
        fw_log "$url: download failed"
      fi
    done
    [ "$round" = 3 ] || sleep "$round"
  done
  rm -rf "$work"
  fw_die "could not download flash-worker $FW_VERSION with sha256 $FW_SHA256"
}

# Copy FW_DIR to the volume cache, dotfiles included, under a temporary
# name renamed at the end: other containers see all of it or none of it.
fw_cache() {
  mkdir -p "$(dirname "$FW_CACHE")" 2>/dev/null || return 0
  tmp=$(mktemp -d "$FW_CACHE.tmp.XXXXXX" 2>/dev/null) || return 0
  if cp -R "$FW_DIR/." "$tmp/" && [ ! -e "$FW_CACHE" ] && mv "$tmp" "$FW_CACHE" 2>/dev/null; then
    return 0
  fi
  rm -rf "$tmp"
}

mkdir -p "$(dirname "$FW_DIR")"
if fw_ready "$FW_DIR"; then
  :
elif fw_ready "$FW_CACHE"; then
  tmp=$(mktemp -d "$FW_DIR.cache.XXXXXX")
  cp -R "$FW_CACHE/." "$tmp/"
  fw_ready "$tmp" || { rm -rf "$tmp"; fw_die "the cache $FW_CACHE is incomplete"; }
  fw_install "$tmp"
else
  fw_download
  fw_cache
fi
exec "$FW_DIR/bootstrap.sh" "$@"
`))
