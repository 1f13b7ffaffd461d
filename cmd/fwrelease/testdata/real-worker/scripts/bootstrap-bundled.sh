#!/bin/sh
# The fixture worker's entry point in the bundled layout, shaped like the
# real worker's: its own venv first on PATH; queue mode runs src/handler.py,
# FLASH_ENDPOINT_TYPE=lb serves src/lb_handler.py's app with a console
# script of a dependency (the real worker: uvicorn) on $PORT (default 80).
set -eu

FW_DIR=$(cd "$(dirname "$0")" && pwd)
export PATH="$FW_DIR/venv/bin:$FW_DIR:$PATH"
export VIRTUAL_ENV="$FW_DIR/venv"
export PYTHONPATH="$FW_DIR/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
if [ "${1:-}" = "--test" ]; then
    "$FW_DIR/uv" --version
fi
if [ "${FLASH_ENDPOINT_TYPE:-qb}" = "lb" ]; then
    exec fwfix-server lb_handler:app --host 0.0.0.0 --port "${PORT:-80}" --timeout-keep-alive 600 --app-dir "$FW_DIR/src"
fi
exec python3 "$FW_DIR/src/handler.py" "$@"
