#!/bin/sh
# flash-worker entry point (bundled layout): runs the handler with the
# interpreter shipped in the tarball, through its venv.
set -eu

FW_DIR=$(cd "$(dirname "$0")" && pwd)
want=$(cat "$FW_DIR/.python-version")

# The venv names its interpreter by absolute path; point it at wherever the
# tarball was unpacked (the first start after a move rewrites it, atomically).
home="$FW_DIR/python/bin"
cfg="$FW_DIR/venv/pyvenv.cfg"
if ! grep -qxF "home = $home" "$cfg"; then
    printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' "$home" "$want" > "$cfg.$$"
    mv "$cfg.$$" "$cfg"
fi

export PYTHONPATH="$FW_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$FW_DIR/venv/bin/python" -s "$FW_DIR/src/handler.py" "$@"
