#!/usr/bin/env bash
# Installs fwrelease for a CI job (action.yml runs it), or anywhere:
#
#   FWRELEASE_VERSION=v0.4.0 scripts/install-fwrelease.sh
#
# A release tag (vX.Y.Z) downloads GoReleaser's archive for this OS and
# architecture and refuses it unless its sha256 is the one checksums.txt
# lists. Anything else (a commit, a branch) is built with `go install`,
# which checks the module against the Go checksum database.
#
# Environment:
#   FWRELEASE_VERSION       required: vX.Y.Z, or a commit/branch of the module
#   FWRELEASE_INSTALL_DIR   where the binary goes (default: $RUNNER_TEMP/fwrelease-bin, else ~/.local/bin)
#   FWRELEASE_DOWNLOAD_URL  release downloads (default: https://github.com/runpod-workers/fwrelease/releases/download);
#                           https, or plain http to a loopback address (tests, local mirrors)
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
check_url() {
    case "$1" in
        https://*) ;;
        http://127.*.*.*) # a dotted-quad host only: not http://127.evil.example/
            hostport=${1#http://}; hostport=${hostport%%/*}; host=${hostport%:*}
            case "$host" in
                *[!0-9.]* | *.*.*.*.* | *..* | *.) fail "FWRELEASE_DOWNLOAD_URL $1: must be https (plain http only to a loopback address)" ;;
            esac ;;
        http://localhost[:/]* | http://\[::1\][:/]*) ;;
        *) fail "FWRELEASE_DOWNLOAD_URL $1: must be https (plain http only to a loopback address)" ;;
    esac
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
