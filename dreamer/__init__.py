"""DreamerV3: the agent, replay, training loop and benchmark (see dreamer/README.md)."""
import ctypes
import sys


def _keep_freed_memory() -> None:
    """A train step allocates and frees the same large activations every update. glibc maps each
    block over its mmap threshold (128 KiB, at most 32 MiB) and hands it back to the kernel when
    freed, so each update page-faults its activations in afresh: a size1m image update's are up
    to 270 MB each (120,000 faults and a tenth of its CPU time in the kernel). Serving every block
    from a heap that is never trimmed reuses the pages (the process keeps its peak size, which
    every update reaches anyway)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): its allocator has no such knobs
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold, m_mmap_max = -1, -2, -3, -4
    libc.mallopt(m_mmap_threshold, 32 << 20)  # the largest glibc allows: blocks below it ...
    libc.mallopt(m_mmap_max, 0)  # ... and above it come from the heap
    libc.mallopt(m_trim_threshold, 2**31 - 1)  # mallopt takes a C int: this is the largest
    libc.mallopt(m_top_pad, 256 << 20)


_keep_freed_memory()
