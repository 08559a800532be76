"""glibc's allocator, told to keep large blocks in their own mappings.

By default glibc raises its mmap threshold each time a large block is freed
(up to 32 MB), so that later blocks of that size come from the heap instead.
A run over a big job frees a large index (the duplicate-id check) and then
grows its arrays of offsets and lines: from the heap, they leave holes that
are never given back, about 15 MB at a million records.  A fixed threshold
(glibc's own default, 128 KiB) keeps each large array in a mapping of its
own, returned whole when it is freed.  The same as MALLOC_MMAP_THRESHOLD_
in the environment; elsewhere than glibc, nothing.

The embedded model is the opposite case: llama.cpp allocates and frees
buffers of a megabyte and more at every step, and with the fixed threshold
each is a fresh mapping (system time 0.8 s -> 11.9 s for the sample job).
``keep_large_blocks`` puts the threshold where glibc's own adjustment ends
(32 MiB), with the heap trimmed only above twice that, as glibc pairs them:
those buffers are then reused from the heap.  A job on that model is small,
so the arrays that the fixed threshold is for do not matter there."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024
LARGE = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


def fix_mmap_threshold() -> bool:
    """Large blocks in mappings of their own.  True when glibc took it."""
    return _mallopt((M_MMAP_THRESHOLD, THRESHOLD))


def keep_large_blocks() -> bool:
    """Blocks up to 32 MiB from the heap, and kept there.  True when glibc took it."""
    return _mallopt((M_MMAP_THRESHOLD, LARGE), (M_TRIM_THRESHOLD, 2 * LARGE))


def _mallopt(*settings: tuple[int, int]) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all(libc.mallopt(param, value) for param, value in settings)
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt): nothing to fix
