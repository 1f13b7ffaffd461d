#!/usr/bin/env bash
# Installs fwrelease for a CI job (action.yml runs it), or anywhere:
#
#   FWRELEASE_VERSION=v0.4.0 scripts/install-fwrelease.sh
#
# A release tag (vX.Y.Z) downloads GoReleaser's archive for this OS and
# architecture and refuses it unless its sha256 is the one checksums.txt
# lists. checksums.txt comes from the same place as the archive, so when
# cosign is on PATH its Sigstore bundle is verified too, against fwrelease's
# own release identity (goreleaser.yml of runpod-workers/fwrelease at this
# tag); without cosign only the checksum is checked, and the script says so.
# Anything else (a commit, a branch) is built with `go install`, which
# checks the module against the Go checksum database.
#
# Environment:
#   FWRELEASE_VERSION       required: vX.Y.Z, or a commit/branch of the module
#   FWRELEASE_INSTALL_DIR   where the binary goes (default: $RUNNER_TEMP/fwrelease-bin, else ~/.local/bin)
#   FWRELEASE_DOWNLOAD_URL  release downloads (default: https://github.com/runpod-workers/fwrelease/releases/download);
#                           https, or plain http to a 127.x.x.x, localhost or [::1] (tests, local mirrors);
#                           no user:password@ in it
#   FWRELEASE_REQUIRE_SIGNATURE=1  refuse to install without cosign to verify checksums.txt's bundle
#   FWRELEASE_TRUSTED_ROOT  a Sigstore trusted_root.json for cosign (a private Sigstore, tests; its SCTs
#                           are not required); default: public-good Sigstore's
#   GITHUB_PATH             when set (Actions), the install directory is added to it
set -euo pipefail

module=github.com/runpod-workers/fwrelease
version="${FWRELEASE_VERSION:-}"
base="${FWRELEASE_DOWNLOAD_URL:-https://github.com/runpod-workers/fwrelease/releases/download}"
base="${base%/}"
default_dir="${HOME}/.local/bin"
[ -n "${RUNNER_TEMP:-}" ] && default_dir="${RUNNER_TEMP}/fwrelease-bin"
dir="${FWRELEASE_INSTALL_DIR:-$default_dir}"

fail() { echo "install-fwrelease: $*" >&2; exit 1; }

[ -n "$version" ] || fail "FWRELEASE_VERSION is empty: name a release tag (v0.4.0) or a commit"

platform() {
    local os arch
    case "$(uname -s)" in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        *) fail "no fwrelease release for $(uname -s); set FWRELEASE_VERSION to a commit to build it with go install" ;;
    esac
    case "$(uname -m)" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) fail "no fwrelease release for $(uname -m); set FWRELEASE_VERSION to a commit to build it with go install" ;;
    esac
    echo "${os}_${arch}"
}

# Plain http only to loopback, the same rule as fwrelease's --allow-insecure.
# The authority is everything between :// and the first / ? or #: it may
# hold no userinfo (http://127.0.0.1:1@example.com/ is example.com's).
check_url() {
    local scheme rest authority host port
    bad() { fail "FWRELEASE_DOWNLOAD_URL $1: $2"; }
    case "$1" in
        https://*) scheme=https ;;
        http://*) scheme=http ;;
        *) bad "$1" "must be https (plain http only to a loopback address)" ;;
    esac
    rest=${1#*://}
    authority=${rest%%[/?#]*}
    case "$authority" in
        *@*) bad "$1" "user information (@) in the URL is refused" ;;
        "") bad "$1" "no host" ;;
    esac
    if [[ $authority =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:([0-9]{1,5}))?$ ]]; then
        host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]}
    else
        bad "$1" "the host is not a host name or address"
    fi
    : "$port"
    [ "$scheme" = https ] && return 0
    case "$host" in
        localhost | "[::1]") return 0 ;;
    esac
    # A dotted quad 127.a.b.c, each a number up to 255: not 127.evil.example.
    if [[ $host =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
        [ "${BASH_REMATCH[1]}" -le 255 ] && [ "${BASH_REMATCH[2]}" -le 255 ] && [ "${BASH_REMATCH[3]}" -le 255 ]; then
        return 0
    fi
    bad "$1" "must be https (plain http only to a loopback address)"
}

# The identity fwrelease's releases are signed with: the goreleaser
# workflow of runpod-workers/fwrelease, run for this tag.
release_identity="https://github.com/runpod-workers/fwrelease/.github/workflows/goreleaser.yml@refs/tags/${version}"

# verify_checksums FILE: checks checksums.txt's Sigstore bundle with cosign,
# when there is one; without, says what was not checked.
verify_checksums() {
    local cosign out root_args=()
    cosign=$(command -v cosign || true)
    if [ -z "$cosign" ]; then
        [ "${FWRELEASE_REQUIRE_SIGNATURE:-}" = 1 ] &&
            fail "FWRELEASE_REQUIRE_SIGNATURE=1, but there is no cosign on PATH to verify checksums.txt's signature"
        echo "install-fwrelease: no cosign on PATH: checksums.txt's signature is NOT verified (only the archive against checksums.txt, from the same server)" >&2
        return 0
    fi
    fetch "${base}/${version}/checksums.txt.sigstore.json" "$1.sigstore.json"
    if [ -n "${FWRELEASE_TRUSTED_ROOT:-}" ]; then
        root_args=(--trusted-root "$FWRELEASE_TRUSTED_ROOT" --insecure-ignore-sct)
    fi
    if ! out=$("$cosign" verify-blob --new-bundle-format --bundle "$1.sigstore.json" \
        --certificate-identity "$release_identity" \
        --certificate-oidc-issuer https://token.actions.githubusercontent.com \
        --certificate-github-workflow-repository runpod-workers/fwrelease \
        ${root_args[@]+"${root_args[@]}"} "$1" 2>&1); then
        fail "checksums.txt of ${version}: its Sigstore bundle does not verify as ${release_identity}; refusing to install: ${out}"
    fi
    echo "install-fwrelease: checksums.txt signed by ${release_identity} (cosign)" >&2
}

fetch() { # fetch URL FILE
    curl -fsSL --retry 3 --proto '=https,http' --proto-redir '=https' -o "$2" "$1" || fail "downloading $1 failed"
}

sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

install_release() {
    local archive want got tmp
    archive="fwrelease_${version#v}_$(platform).tar.gz"
    check_url "$base"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # expanded now: tmp is local to this function
    trap "rm -rf '$tmp'" EXIT
    fetch "${base}/${version}/checksums.txt" "${tmp}/checksums.txt"
    verify_checksums "${tmp}/checksums.txt"
    fetch "${base}/${version}/${archive}" "${tmp}/${archive}"
    want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "${tmp}/checksums.txt")
    [ -n "$want" ] || fail "${base}/${version}/checksums.txt lists no ${archive}"
    got=$(sha256_of "${tmp}/${archive}")
    [ "$got" = "$want" ] ||
        fail "${archive}: sha256 ${got}, but checksums.txt says ${want}; refusing to install it"
    tar -xzf "${tmp}/${archive}" -C "$tmp" fwrelease || fail "${archive} holds no fwrelease binary"
    mkdir -p "$dir"
    # Beside, then renamed: a running job never sees half a binary.
    install -m 0755 "${tmp}/fwrelease" "${dir}/.fwrelease.new"
    mv -f "${dir}/.fwrelease.new" "${dir}/fwrelease"
    echo "install-fwrelease: fwrelease ${version} (${archive}, sha256 ${got}) in ${dir}" >&2
}

install_from_source() {
    command -v go >/dev/null || fail "FWRELEASE_VERSION ${version} is not a release tag, and building it needs Go (actions/setup-go)"
    mkdir -p "$dir"
    GOBIN="$dir" go install "${module}/cmd/fwrelease@${version}" ||
        fail "go install ${module}/cmd/fwrelease@${version} failed"
    echo "install-fwrelease: fwrelease ${version} built from source in ${dir}" >&2
}

if [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
    install_release
else
    install_from_source
fi
if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$dir" >>"$GITHUB_PATH"
fi
