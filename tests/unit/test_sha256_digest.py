"""content.blobs.sha256_digest: the same digest whichever implementation hashes (CPython's own
for small data, OpenSSL's through hashlib for large), and the small path loads no OpenSSL."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from nerdpy.engine.content.blobs import SMALL, sha256_digest


def test_digests_agree_across_the_threshold():
    for n in (0, 1, 63, 64, 65, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL):
        data = os.urandom(n)
        assert sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest(), n


def test_a_small_digest_does_not_load_openssl():
    code = ("import sys; from nerdpy.engine.content.blobs import sha256_digest; sha256_digest(b'x' * 1000); "
            "print(sorted(m for m in sys.modules if m in ('hashlib', '_hashlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
