#!/bin/sh
# Rebuilds the example's offline wheelhouse from these sources, with no
# network: the pure-Python packages with Debian's python3 (setuptools and
# wheel), the C extension with gcc against each pyenv interpreter.
# The wheels are committed so the example works on a machine without them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
wheelhouse="$here/../wheelhouse"
export SOURCE_DATE_EPOCH=1767225600
for pkg in fwdemo-text fwdemo-greet; do
    /usr/bin/python3 -m pip wheel --no-deps --no-build-isolation --no-index -w "$wheelhouse" "$here/$pkg"
    rm -rf "$here/$pkg/build" "$here/$pkg"/*.egg-info
done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
pythons=""
for v in 3.10 3.11 3.12 3.13; do
    pythons="$pythons $(ls "$pyenv_root"/versions/$v.*/bin/python$v | tail -1)"
done
# shellcheck disable=SC2086
python3 "$here/fwdemo-speedups/make_wheels.py" "$wheelhouse" $pythons
