#!/bin/sh
# Rebuilds the example's offline wheelhouse from these sources with Debian's
# python3 (setuptools and wheel, no network). The wheels are committed so the
# example works on a machine without either.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_DATE_EPOCH=1767225600
for pkg in "$here"/*/; do
    /usr/bin/python3 -m pip wheel --no-deps --no-build-isolation --no-index -w "$here/../wheelhouse" "$pkg"
    rm -rf "$pkg/build" "$pkg"/*.egg-info
done
