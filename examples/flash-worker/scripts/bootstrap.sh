#!/bin/sh
# flash-worker entry point (overlay layout): runs the handler with the base
# image's own python3.X (else python3), which must be the version this tarball
# was built for.
set -eu

FW_DIR=$(cd "$(dirname "$0")" && pwd)
want=$(cat "$FW_DIR/.python-version")
# python3.X of the target first: a base image may ship several interpreters
# side by side (GPU images: 3.10-3.13) with python3 another version.
PY=${FLASH_WORKER_PYTHON:-}
if [ -z "$PY" ]; then
    PY=python3
    if command -v "python$want" >/dev/null 2>&1; then PY=python$want; fi
fi

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "flash-worker: $PY not found; this tarball needs Python $want in the base image" >&2
    exit 1
fi
have=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$want" ]; then
    echo "flash-worker: this tarball is built for Python $want but $PY is Python $have; use the py$have tarball or a Python $want base image" >&2
    exit 1
fi

export PYTHONPATH="$FW_DIR/site-packages:$FW_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" -s "$FW_DIR/src/handler.py" "$@"
