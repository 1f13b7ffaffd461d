"""Builds fwdemo-speedups wheels, one per CPython 3.10–3.13 ABI.

A C extension compiled with gcc against each interpreter's headers, packed
into a wheel by hand (zipfile + RECORD) because the interpreters here have
no setuptools for every version. The extension needs nothing newer than
glibc 2.2.5, which make_wheels checks, so the manylinux_2_17 tag is honest.

usage: python3 make_wheels.py WHEELHOUSE PYTHON3.10 PYTHON3.11 ...
"""

import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile

NAME, VERSION = "fwdemo_speedups", "0.1.0"
HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = (2026, 1, 1, 0, 0, 0)


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def build(python, wheelhouse):
    info = subprocess.check_output([python, "-c",
        "import sys, sysconfig; print(sysconfig.get_paths()['include']); "
        "print('%d%d' % sys.version_info[:2]); print(sysconfig.get_config_var('EXT_SUFFIX'))"], text=True).split()
    include, abi, suffix = info
    with tempfile.TemporaryDirectory() as tmp:
        so = os.path.join(tmp, "_speedups" + suffix)
        subprocess.check_call(["gcc", "-shared", "-fPIC", "-O2", "-g0", "-I", include,
                               os.path.join(HERE, "_speedups.c"), "-o", so])
        subprocess.check_call(["strip", "--strip-unneeded", so])
        needed = subprocess.check_output(["objdump", "-T", so], text=True)
        versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", needed)}
        assert all(v <= (2, 17) for v in versions), versions
        with open(so, "rb") as f:
            so_data = f.read()
    tag = "cp%s-cp%s-manylinux_2_17_x86_64.manylinux2014_x86_64" % (abi, abi)
    dist_info = "%s-%s.dist-info" % (NAME, VERSION)
    files = {
        "fwdemo_speedups/__init__.py": b'"""A C-accelerated checksum, one build per CPython ABI."""\n\nfrom fwdemo_speedups._speedups import checksum\n',
        "fwdemo_speedups/_speedups" + suffix: so_data,
        dist_info + "/METADATA": ("Metadata-Version: 2.1\nName: fwdemo-speedups\nVersion: %s\n"
                                  "Summary: A C extension for the flash-worker example\nLicense: MIT\n"
                                  "Requires-Python: >=3.10\n" % VERSION).encode(),
        dist_info + "/WHEEL": ("Wheel-Version: 1.0\nGenerator: make_wheels.py\nRoot-Is-Purelib: false\n"
                               + "".join("Tag: %s\n" % t for t in
                                         ("cp%s-cp%s-manylinux_2_17_x86_64" % (abi, abi),
                                          "cp%s-cp%s-manylinux2014_x86_64" % (abi, abi)))).encode(),
        dist_info + "/top_level.txt": b"fwdemo_speedups\n",
    }
    record = [record_line(p, d) for p, d in files.items()] + [dist_info + "/RECORD,,"]
    files[dist_info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    out = os.path.join(wheelhouse, "%s-%s-%s.whl" % (NAME, VERSION, tag))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    print(out)


if __name__ == "__main__":
    for py in sys.argv[2:]:
        build(py, sys.argv[1])
