"""The fixture worker's handler.

`handler.py --test` (or FLASH_WORKER_SELFTEST=1, as a container starts it) imports every locked dependency and prints the worker's
version, the Python it runs on, and the name and version of each
distribution installed beside it, one per line: what a release engineer
checks against uv.lock.
"""

import os
import sys
import sysconfig
from importlib import metadata

FW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def selftest():
    import fwdemo_greet
    import fwdemo_speedups  # a C extension: fails on the wrong CPython ABI
    import fwfix_server

    assert fwdemo_greet.greet("x")
    assert fwdemo_speedups.checksum("flash") > 0
    assert fwfix_server.serve() == "serving"
    with open(os.path.join(FW_DIR, ".version")) as f:
        version = f.read().strip()
    print("worker-fixture %s ok python %d.%d" % ((version,) + sys.version_info[:2]))
    site = os.path.join(FW_DIR, "site-packages")  # overlay layout
    if not os.path.isdir(site):
        site = sysconfig.get_paths()["purelib"]  # bundled: the venv's
    dists = sorted((d.metadata["Name"], d.version) for d in metadata.distributions(path=[site]))
    for name, ver in dists:
        print("%s==%s" % (name, ver))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--test"] or os.environ.get("FLASH_WORKER_SELFTEST") == "1":
        sys.exit(selftest())
    print("worker-fixture: only --test is implemented", file=sys.stderr)
    sys.exit(2)
