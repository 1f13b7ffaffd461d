"""Assembles a realistic site-packages tree from Debian's builds.

Imports aiohttp, pydantic, fastapi, uvicorn, requests, cloudpickle, numpy
and yaml with Debian's python3, and copies every top-level package they
loaded from dist-packages (with its metadata and its __pycache__, as Debian
installed them) into DEST. The tree is the fixture for the slimming test and
benchmark: real packages, real compiled extensions, real test suites.

usage: /usr/bin/python3 realistic_tree.py DEST
"""

import glob
import importlib
import os
import shutil
import sys

PACKAGES = ["aiohttp", "pydantic", "fastapi", "uvicorn", "requests", "cloudpickle", "numpy", "yaml"]
DIST = "/usr/lib/python3/dist-packages"


def main(dest):
    for name in PACKAGES:
        importlib.import_module(name)
    tops = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None) or ""
        if f.startswith(DIST + "/"):
            tops.add(f[len(DIST) + 1:].split("/")[0])
    os.makedirs(dest, exist_ok=True)
    for top in sorted(tops):
        src = os.path.join(DIST, top)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, top), symlinks=True)
        else:
            shutil.copy2(src, os.path.join(dest, top))
        stem = top.split(".")[0].split("-")[0]
        for meta in glob.glob(os.path.join(DIST, stem + "-*.*-info")) + glob.glob(os.path.join(DIST, stem + ".*-info")):
            out = os.path.join(dest, os.path.basename(meta))
            if os.path.isdir(meta) and not os.path.exists(out):
                shutil.copytree(meta, out, symlinks=True)
    print(" ".join(sorted(tops)))


if __name__ == "__main__":
    main(sys.argv[1])
