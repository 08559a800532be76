"""glibc's allocator, told to keep large blocks in their own mappings.

By default glibc raises its mmap threshold each time a large block is freed
(up to 32 MB), so that later blocks of that size come from the heap instead.
A run over a big job frees a large index (the duplicate-id check) and then
grows its arrays of offsets and lines: from the heap, they leave holes that
are never given back, about 15 MB at a million records.  A fixed threshold
(glibc's own default, 128 KiB) keeps each large array in a mapping of its
own, returned whole when it is freed.  The same as MALLOC_MMAP_THRESHOLD_
in the environment; elsewhere than glibc, nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024


def fix_mmap_threshold() -> bool:
    """True when glibc took it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt): nothing to fix
