#!/usr/bin/env python3
"""Cold-start benchmark: the SDK's current start command against ours.

Both run the same realistic tarball, served from 127.0.0.1 at a fixed rate,
in three cases: a cold start (nothing on the volume), a new container with
the volume cache filled, and a restarted container (its tree still in
place). It measures the time from start to `exec bootstrap.sh` (the
tarball's bootstrap.sh only prints and exits) and the bytes downloaded,
as medians over --runs runs, and prints a Markdown table.

The SDK's command is rebuilt here from its injection generator's source
(runpod_flash.core.resources.injection.build_injection_cmd), with its two
fixed paths, /opt/flash-worker and /runpod-volume, moved into a scratch
directory. Ours is `fwrelease inject` for the same tarball, with --fw-dir
and --cache-dir moved alike, and --allow-insecure since the server is plain
http: TLS would cost both the same.

usage: coldstart.py --fwrelease BIN --tree SITE_PACKAGES --work DIR [--rate MBPS] [--runs N]
"""

import argparse
import hashlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time


class Throttled(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that stops reading (tar done, or the SDK's second download) is not news

    def __init__(self, root, rate):
        self.root, self.rate, self.sent = root, rate, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = os.path.join(self.server.root, os.path.basename(self.path))
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        chunk, start = 64 << 10, time.perf_counter()
        for off in range(0, len(data), chunk):
            self.wfile.write(data[off:off + chunk])
            with self.server.lock:
                self.server.sent += min(chunk, len(data) - off)
            # Hold the link to the rate: sleep until this many bytes are due.
            due = start + (off + chunk) / self.server.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def log_message(self, *args):
        pass


def sdk_command(version, url, fw_dir, volume):
    """build_injection_cmd of the SDK, paths moved, otherwise as written."""
    return (
        "bash -c '"
        f"set -e; FW_DIR={fw_dir}; FW_VER={version}; "
        f'NV_CACHE="{volume}/.flash-worker/v$FW_VER"; '
        'if [ -d "$NV_CACHE" ] && [ -f "$NV_CACHE/.version" ]; then '
        'cp -r "$NV_CACHE" "$FW_DIR"; '
        'elif [ -f "$FW_DIR/.version" ] && [ "$(cat $FW_DIR/.version)" = "$FW_VER" ]; then '
        "true; "
        "else "
        "mkdir -p $FW_DIR; "
        f'DL_URL="{url}"; '
        "dl() { "
        '(command -v curl >/dev/null 2>&1 && curl -sSL "$1" || '
        'command -v wget >/dev/null 2>&1 && wget -qO- "$1" || '
        'python3 -c "import urllib.request,sys;sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())" "$1"); '
        "}; "
        'dl "$DL_URL" '
        "| tar xz -C $FW_DIR --strip-components=1; "
        f"if [ -d {volume} ]; then "
        'mkdir -p "$NV_CACHE" && cp -r "$FW_DIR"/* "$NV_CACHE/" 2>/dev/null || true; fi; '
        "fi; "
        "exec $FW_DIR/bootstrap.sh'"
    )


def run(cmd, env):
    t0 = time.perf_counter()
    out = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0 or "bootstrap ran" not in out.stdout:
        sys.exit("start failed:\n%s\n%s\n%s" % (cmd[:200], out.stdout, out.stderr))
    return dt


def build(args, name, slim):
    """A snapshot release of the tree; returns (manifest, pub, artifact)."""
    cfgdir = os.path.join(args.work, name)
    os.makedirs(os.path.join(cfgdir, "scripts"), exist_ok=True)
    with open(os.path.join(cfgdir, "scripts", "bootstrap.sh"), "w") as f:
        f.write("#!/bin/sh\necho bootstrap ran\n")
    cfg = os.path.join(cfgdir, "fwrelease.yaml")
    with open(cfg, "w") as f:
        f.write(
            'name: flash-worker\nversion: "1.0.0"\nsource_date_epoch: 1767225600\n'
            'matrix: {python: ["3.11"]}\n'
            'files: [{src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}]\n'
            "deps: {dir: %s}\nslim: {enabled: %s}\n" % (args.tree, "true" if slim else "false")
        )
    dist = os.path.join(cfgdir, "dist")
    subprocess.run([args.fwrelease, "--config", cfg, "--dist", dist, "release", "--snapshot"],
                   check=True, capture_output=True)
    m = json.load(open(os.path.join(dist, "manifest.json")))
    return os.path.join(dist, "manifest.json"), os.path.join(dist, "snapshot.pub"), m["artifacts"][0], dist


def ours(args, manifest, pub, art, url, fw_dir, cache_dir):
    out = subprocess.run(
        [args.fwrelease, "--allow-insecure", "inject", "--manifest", manifest, "--key", pub,
         "--target", art["target"]["id"], "--url", url, "--fw-dir", fw_dir, "--cache-dir", cache_dir,
         "--docker-args"], check=True, capture_output=True, text=True)
    return out.stdout.rstrip("\n")


def measure(server, make, runs, env, scratch):
    """Median seconds and bytes for the three cases of one start command."""
    results = {}
    for case in ("cold", "volume cache", "restart"):
        times, sent = [], []
        for i in range(runs):
            shutil.rmtree(scratch, ignore_errors=True)
            fw_dir, volume = os.path.join(scratch, "opt", "flash-worker"), os.path.join(scratch, "runpod-volume")
            os.makedirs(volume)
            os.makedirs(os.path.dirname(fw_dir))
            cmd = make(fw_dir, volume)
            if case != "cold":
                run(cmd, env)  # fill the volume cache (and the tree)
                if case == "volume cache":
                    shutil.rmtree(fw_dir)
            before = server.sent
            times.append(run(cmd, env))
            sent.append(server.sent - before)
        results[case] = (statistics.median(times), statistics.median(sent))
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fwrelease", required=True)
    p.add_argument("--tree", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--rate", type=float, default=50, help="MB/s the server sends at")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)

    full = build(args, "unslimmed", slim=False)
    slim = build(args, "slim", slim=True)
    served = os.path.join(args.work, "served")
    os.makedirs(served, exist_ok=True)
    for _, _, art, dist in (full, slim):
        shutil.copy(os.path.join(dist, art["file"]), os.path.join(served, art["file"].replace(".tar", "-%s.tar" % art["sha256"][:8])))
    server = Throttled(served, args.rate * 1e6)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d/" % server.server_address[1]
    url = lambda art: base + art["file"].replace(".tar", "-%s.tar" % art["sha256"][:8])
    env = dict(os.environ)
    scratch = os.path.join(args.work, "scratch")

    manifest, pub, art, _ = full
    rows = [("SDK's command", art, measure(server, lambda d, v: sdk_command("1.0.0", url(art), d, v), args.runs, env, scratch))]
    rows.append(("fwrelease inject", art, measure(
        server, lambda d, v: ours(args, manifest, pub, art, url(art), d, v + "/.flash-worker"), args.runs, env, scratch)))
    manifest, pub, sart, _ = slim
    rows.append(("fwrelease inject, slim tarball", sart, measure(
        server, lambda d, v: ours(args, manifest, pub, sart, url(sart), d, v + "/.flash-worker"), args.runs, env, scratch)))

    sdk = rows[0][2]
    print("| start command | tarball (MB) | case | time to exec bootstrap.sh (s) | × SDK | downloaded (MB) | × SDK |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, a, res in rows:
        for case, (t, b) in res.items():
            st, sb = sdk[case]
            print("| %s | %.1f | %s | %.3f | %.2f | %.1f | %s |" % (
                name, a["size"] / 1e6, case, t, t / st, b / 1e6, "%.2f" % (b / sb) if sb else "—"))
    print()
    print("Served at %.0f MB/s from 127.0.0.1; medians of %d runs; each row in one run of this script." % (args.rate, args.runs))


if __name__ == "__main__":
    main()
