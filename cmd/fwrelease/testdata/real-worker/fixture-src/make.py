"""Regenerates the real-worker fixture's wheels, its uv.lock and the fake uv.

The fixture has the real worker's shape: a pyproject.toml with the version,
dependencies locked in uv.lock (uv's format: a virtual project, a dev group,
an extra, marker-gated packages, a C extension per CPython ABI), and a
static `uv` shipped at the top of the tarball. PyPI and uv are out of reach,
so the pure-Python wheels are written here with zipfile (deterministic:
fixed times), the C-extension wheels are the example's
(examples/flash-worker/wheelhouse), and the lock is written from the
wheelhouse's real digests.

usage: /usr/bin/python3 make.py   (from anywhere; writes beside itself)
"""

import base64
import gzip
import hashlib
import io
import os
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.dirname(HERE)
WHEELHOUSE = os.path.join(WORKER, "wheelhouse")
UV_DIST = os.path.join(os.path.dirname(WORKER), "uv-dist")
EPOCH = (2026, 1, 1, 0, 0, 0)


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def pure_wheel(dist, version, module_text, requires=(), extras=None, console_scripts=None):
    """Writes a py3-none-any wheel holding one module (and its console scripts)."""
    mod = dist.replace("-", "_")
    info = "%s-%s.dist-info" % (mod, version)
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nRequires-Python: >=3.10\n" % (dist, version)
    for r in requires:
        meta += "Requires-Dist: %s\n" % r
    for extra, reqs in (extras or {}).items():
        meta += "Provides-Extra: %s\n" % extra
        for r in reqs:
            meta += 'Requires-Dist: %s ; extra == "%s"\n' % (r, extra)
    files = {
        mod + "/__init__.py": module_text.encode(),
        info + "/METADATA": meta.encode(),
        info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: make.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        info + "/top_level.txt": (mod + "\n").encode(),
    }
    if console_scripts:
        lines = ["[console_scripts]"] + ["%s = %s" % item for item in sorted(console_scripts.items())]
        files[info + "/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = [record_line(p, d) for p, d in files.items()] + [info + "/RECORD,,"]
    files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    out = os.path.join(WHEELHOUSE, "%s-%s-py3-none-any.whl" % (mod, version))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)


def fake_uv(arch):
    """A uv-ARCH-unknown-linux-musl.tar.gz whose uv only prints a version."""
    top = "uv-%s-unknown-linux-musl" % arch
    script = b"#!/bin/sh\necho 'uv 0.7.19 (fwrelease test fake, " + arch.encode() + b")'\n"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in ((top + "/uv", script, 0o755), (top + "/uvx", b"#!/bin/sh\nexit 1\n", 0o755)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, 1767225600
            tar.addfile(ti, io.BytesIO(data))
    os.makedirs(UV_DIST, exist_ok=True)
    with open(os.path.join(UV_DIST, top + ".tar.gz"), "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(raw.getvalue())


def wheel_entry(filename):
    with open(os.path.join(WHEELHOUSE, filename), "rb") as f:
        data = f.read()
    # The URL is where PyPI would serve it; the build finds it in find_links.
    return '    { url = "https://files.pythonhosted.org/packages/fw/%s", hash = "sha256:%s", size = %d },\n' % (
        filename, hashlib.sha256(data).hexdigest(), len(data))


def package(name, version, wheels, deps="", extra=""):
    text = '[[package]]\nname = "%s"\nversion = "%s"\nsource = { registry = "https://pypi.org/simple" }\n' % (name, version)
    if deps:
        text += "dependencies = [\n%s]\n" % deps
    text += "wheels = [\n%s]\n" % "".join(wheel_entry(w) for w in wheels)
    return text + extra + "\n"


def lock():
    speedups = sorted(w for w in os.listdir(WHEELHOUSE) if w.startswith("fwdemo_speedups-"))
    parts = [
        'version = 1\nrevision = 2\nrequires-python = ">=3.10, <3.14"\nresolution-markers = [\n'
        "    \"python_full_version >= '3.11'\",\n    \"python_full_version < '3.11'\",\n]\n\n",
        package("fwdemo-greet", "0.1.0", ["fwdemo_greet-0.1.0-py3-none-any.whl"], '    { name = "fwdemo-text" },\n'),
        package("fwdemo-speedups", "0.1.0", speedups),
        package("fwdemo-text", "0.1.0", ["fwdemo_text-0.1.0-py3-none-any.whl"]),
        package("fwfix-compat", "1.0.0", ["fwfix_compat-1.0.0-py3-none-any.whl"]),
        # Locked but only wanted by the dev group: its wheel is nowhere, so
        # selecting it would fail the build.
        '[[package]]\nname = "fwfix-devtool"\nversion = "9.9.9"\nsource = { registry = "https://pypi.org/simple" }\n'
        'wheels = [\n    { url = "https://files.pythonhosted.org/packages/fw/fwfix_devtool-9.9.9-py3-none-any.whl", '
        'hash = "sha256:%s", size = 1 },\n]\n\n' % ("0" * 64),
        package("fwfix-fast", "0.3.0", ["fwfix_fast-0.3.0-py3-none-any.whl"]),
        package("fwfix-server", "0.2.0", ["fwfix_server-0.2.0-py3-none-any.whl"],
                extra='\n[package.optional-dependencies]\nstandard = [\n'
                      "    { name = \"fwfix-fast\", marker = \"sys_platform != 'win32'\" },\n]\n"),
        '[[package]]\nname = "worker-fixture"\nversion = "1.4.1"\nsource = { virtual = "." }\ndependencies = [\n'
        '    { name = "fwdemo-greet" },\n    { name = "fwdemo-speedups" },\n'
        "    { name = \"fwfix-compat\", marker = \"python_full_version < '3.11'\" },\n"
        '    { name = "fwfix-server", extra = ["standard"] },\n]\n\n'
        '[package.dev-dependencies]\ndev = [\n    { name = "fwfix-devtool" },\n]\n\n'
        '[package.metadata]\nrequires-dist = [\n'
        '    { name = "fwdemo-greet", specifier = ">=0.1.0" },\n'
        '    { name = "fwdemo-speedups", specifier = ">=0.1.0" },\n'
        "    { name = \"fwfix-compat\", marker = \"python_full_version < '3.11'\", specifier = \">=1.0\" },\n"
        '    { name = "fwfix-server", extras = ["standard"], specifier = ">=0.2" },\n]\n\n'
        '[package.metadata.requires-dev]\ndev = [{ name = "fwfix-devtool", specifier = ">=9" }]\n',
    ]
    with open(os.path.join(WORKER, "uv.lock"), "w") as f:
        f.write("".join(parts))


def main():
    pure_wheel("fwfix-compat", "1.0.0", 'VERSION = "1.0.0"\n')
    # A newer release in the wheelhouse, which a resolver would take; the
    # lock says 1.0.0.
    pure_wheel("fwfix-compat", "1.1.0", 'VERSION = "1.1.0"\n')
    pure_wheel("fwfix-fast", "0.3.0", 'SPEED = "fast"\n')
    with open(os.path.join(HERE, "fwfix_server.py")) as f:
        server = f.read()
    pure_wheel("fwfix-server", "0.2.0", server, extras={"standard": ["fwfix-fast>=0.3"]},
               console_scripts={"fwfix-server": "fwfix_server:main"})
    for arch in ("x86_64", "aarch64"):
        fake_uv(arch)
    lock()


if __name__ == "__main__":
    main()
