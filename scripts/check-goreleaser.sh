#!/usr/bin/env bash
# Checks .goreleaser.yaml with the real GoReleaser and makes a snapshot of
# fwrelease's own release in dist/goreleaser: the four archives (linux and
# darwin × amd64 and arm64) and checksums.txt, which it then checks.
# Signing and SBOMs are skipped: they need the workflow's OIDC identity and
# syft, which only the release workflow has.
#
#   scripts/check-goreleaser.sh          # installs GoReleaser if missing
#
# Not part of .ci/run: building GoReleaser from source takes many minutes.
# Pinned to v2.15.1: v2.16 and later need a newer Go than this module's, or
# a module (go.digitalxero.dev/go-msix) the module proxy here refuses.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:${HOME}/go/bin:${PATH}"

if ! command -v goreleaser >/dev/null; then
    echo "installing goreleaser v2.15.1"
    GOFLAGS=-buildvcs=false go install github.com/goreleaser/goreleaser/v2@v2.15.1
fi
goreleaser --version | head -1

goreleaser check
# --snapshot publishes nothing; the version is the next patch, -SNAPSHOT.
goreleaser release --snapshot --clean --skip=sign,sbom

out=dist/goreleaser
for platform in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
    archive=$(ls "$out"/fwrelease_*_"$platform".tar.gz)
    tar -tzf "$archive" | grep -qx fwrelease || { echo "$archive holds no fwrelease" >&2; exit 1; }
done
(cd "$out" && sha256sum -c checksums.txt)
# The stamped version reaches the binary built for this machine.
"$out"/fwrelease_linux_amd64_v1/fwrelease version
