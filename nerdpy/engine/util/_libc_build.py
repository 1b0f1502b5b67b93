"""Generates `_libc_ffi.py`: cffi's out-of-line ABI mode for the few libc calls the engine makes
(mount, umount2, prctl, unshare, setns). The generated module needs no C compiler and no
pycparser at run time, so loading it costs about a millisecond instead of the ~50 ms an inline
`cdef` parse takes.

Regenerate after changing CDEF: `python -m nerdpy.engine.util._libc_build` (a unit test checks that
the checked-in file is current).
"""
from __future__ import annotations

import os

CDEF = """
int mount(const char *source, const char *target, const char *fstype, unsigned long flags,
          const void *data);
int umount2(const char *target, int flags);
int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
int unshare(int flags);
int setns(int fd, int nstype);
"""

MODULE = "nerdpy.engine.util._libc_ffi"


def builder():
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE, None)
    return ffi


def generate(target_dir: str) -> str:
    """Write `_libc_ffi.py` into target_dir (the package's directory by default); its path."""
    return builder().emit_python_code(os.path.join(target_dir, "_libc_ffi.py")) or os.path.join(
        target_dir, "_libc_ffi.py")


if __name__ == "__main__":
    print(generate(os.path.dirname(os.path.abspath(__file__))))
