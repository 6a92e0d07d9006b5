"""Tune glibc's allocator for numpy's many short-lived, medium-sized arrays.

glibc serves every allocation above ``M_MMAP_THRESHOLD`` (128 KiB to start with) by a
fresh ``mmap``, and returns freed memory at the top of the heap once it exceeds
``M_TRIM_THRESHOLD``. A training step creates and frees dozens of activation-sized
arrays (a 256 x 256 float32 activation is 256 KiB), so by default each one costs an mmap,
page faults on first touch and an munmap. Raising both thresholds keeps those blocks in
the heap for reuse. On the MLP benchmark (``bench/nn_speed.py``) a training step went from
about 1.6 ms to 1.2 ms on the project's 2-core machine (more when the machine is busy);
the price is that up to ``TRIM_THRESHOLD`` of freed memory may stay mapped to the process.

Applied once when :mod:`tradenn.nn` is imported; a no-op off glibc. Set the environment
variable ``TRADENN_NN_MALLOPT=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum for this setting on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; return whether it was done."""
    if os.environ.get("TRADENN_NN_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # not glibc: other C libraries do not take these mallopt parameters
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


TUNED = tune_malloc()
