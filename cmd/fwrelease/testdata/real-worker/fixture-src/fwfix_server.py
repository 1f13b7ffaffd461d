"""fwfix-server: the fixture's stand-in for uvicorn, standard library only.

`fwfix-server MODULE:APP --host H --port P --app-dir DIR` imports an ASGI
application and serves it over HTTP/1.1, one request per connection: enough
for a load-balanced worker to answer its health check and its requests.
"""

import argparse
import asyncio
import importlib
import sys


def serve():
    return "serving"


async def _handle(app, reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [tuple(h.split(":", 1)) for h in lines[1:] if ":" in h]
    headers = [(k.strip().lower().encode(), v.strip().encode()) for k, v in headers]
    length = int(dict(headers).get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": headers, "server": writer.get_extra_info("sockname")[:2]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    status = "HTTP/1.1 %d OK\r\n" % start["status"]
    hdrs = "".join("%s: %s\r\n" % (k.decode(), v.decode()) for k, v in start.get("headers", []))
    writer.write((status + hdrs + "content-length: %d\r\nconnection: close\r\n\r\n" % len(out)).encode() + out)
    await writer.drain()
    writer.close()


async def _serve(app, host, port):
    server = await asyncio.start_server(lambda r, w: _handle(app, r, w), host, port)
    print("fwfix-server: serving on http://%s:%d" % (host, port), file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(prog="fwfix-server")
    p.add_argument("app", help="MODULE:ATTRIBUTE of an ASGI application")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--app-dir", default=".")
    p.add_argument("--timeout-keep-alive", type=int, default=5)
    args = p.parse_args()
    sys.path.insert(0, args.app_dir)
    module, _, attr = args.app.partition(":")
    app = getattr(importlib.import_module(module), attr)
    asyncio.run(_serve(app, args.host, args.port))
    return 0
