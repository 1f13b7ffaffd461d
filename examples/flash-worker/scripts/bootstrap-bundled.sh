#!/bin/sh
# flash-worker entry point (bundled layout): runs the handler with the
# interpreter shipped in the tarball, through its venv.
set -eu

# The venv's pyvenv.cfg names no home: Python finds the bundled interpreter
# through venv/bin/python's relative link, wherever the tarball is unpacked.
FW_DIR=$(cd "$(dirname "$0")" && pwd)

export PYTHONPATH="$FW_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$FW_DIR/venv/bin/python" -s "$FW_DIR/src/handler.py" "$@"
