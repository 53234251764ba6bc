"""Where training runs: the one place "auto" becomes a device, and the CPU allocator setting."""

import ctypes
import sys

import torch


def resolve_device(name="auto"):
    """'auto' picks CUDA when a GPU is visible, else the CPU; anything else (a name or a torch.device)
    is passed to torch. Every public function taking a device resolves it here, so all accept 'auto'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def keep_freed_memory():
    """Have glibc reuse freed memory instead of returning it to the kernel (once per process; Linux only).

    A CPU training step allocates and frees the same large tensors every step. glibc serves blocks
    above its mmap threshold (at most 32 MiB) with fresh mmap'd pages, and trims freed memory at the top
    of the heap, so each step page-faults and zero-fills hundreds of MiB anew: at LFADS's mc_maze 5 ms
    size that was a quarter of the step. With mmap off (M_MMAP_MAX 0) and a 2 GiB trim threshold,
    the heap is reused; the resident size stays near the step's peak, which it reaches every step
    anyway. Allocation only: no result changes.
    """
    global _MEMORY_KEPT
    if _MEMORY_KEPT or not sys.platform.startswith("linux"):
        return
    _MEMORY_KEPT = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    mallopt(ctypes.c_int(M_MMAP_MAX), ctypes.c_int(0))
    mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(2**31 - 1))


_MEMORY_KEPT = False
