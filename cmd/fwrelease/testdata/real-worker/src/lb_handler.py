"""The fixture worker's load-balanced mode: an ASGI application.

GET /ping answers the health check; any other path reports the worker's
version and the Python it runs on.
"""

import json
import os
import sys

FW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/ping":
        body = {"status": "healthy"}
    else:
        with open(os.path.join(FW_DIR, ".version")) as f:
            body = {"worker": f.read().strip(), "python": "%d.%d" % sys.version_info[:2], "path": scope["path"]}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body, sort_keys=True).encode()})
