"""Memory a finished job freed, given back to the system rather than kept by the allocator.

glibc's malloc keeps freed heap pages for reuse, and raises its mmap threshold after a large
buffer is freed, so the next ones come from the heap too: a worker that embedded one long
document stayed at its peak for good. malloc_trim(0) returns every free page of every arena.
Elsewhere than glibc (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None when the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def give_back() -> bool:
    """Return the heap's free pages to the system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
