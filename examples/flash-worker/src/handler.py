"""flash-worker's handler.

With FLASH_WORKER_SELFTEST=1 it imports its dependencies, prints
`flash-worker <version> ok python <X.Y>` and exits 0: the check that a
tarball works on a base image. Otherwise it handles one job read as JSON from
stdin and writes the result as JSON to stdout.
"""

import json
import os
import sys

from version import __version__


def handler(job):
    from fwdemo_greet import greet

    from fwdemo_speedups import checksum

    name = job.get("input", {}).get("name", "world")
    return {"output": greet(name), "checksum": checksum(name)}


def selftest():
    import fwdemo_greet
    import fwdemo_speedups  # a C extension: fails on the wrong CPython ABI
    import fwdemo_text

    assert fwdemo_text.shout("ok") == "OK!"
    assert fwdemo_greet.greet("x")
    assert fwdemo_speedups.checksum("flash") == fwdemo_speedups.checksum("flash") > 0
    python = "%d.%d" % sys.version_info[:2]
    print("flash-worker %s ok python %s" % (__version__, python))
    return 0


def main():
    if os.environ.get("FLASH_WORKER_SELFTEST") == "1":
        return selftest()
    job = json.load(sys.stdin)
    json.dump(handler(job), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
