#!/bin/sh
# The fixture worker's entry point (overlay layout). Like the real worker's,
# `--test` reports the shipped uv's version before the self-test.
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
have=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$want" ]; then
    echo "worker-fixture: built for Python $want but $PY is Python $have" >&2
    exit 1
fi
if [ "${1:-}" = "--test" ]; then
    "$FW_DIR/uv" --version
fi

export PYTHONPATH="$FW_DIR/site-packages:$FW_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" -s "$FW_DIR/src/handler.py" "$@"
