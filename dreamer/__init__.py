"""DreamerV3: the agent, replay, training loop and benchmark (see dreamer/README.md)."""
import ctypes
import sys


def _keep_freed_memory() -> None:
    """A train step allocates and frees the same large activations every update. glibc hands
    blocks over 128 KiB–32 MiB back to the kernel when freed, so each update page-faults its
    activations in afresh: a fifth of a size1m CPU update. Serving them from a heap that is never
    trimmed reuses the pages (the process keeps its peak size, which every update reaches anyway)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): its allocator has no such knobs
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # the largest glibc allows
    libc.mallopt(m_trim_threshold, 1 << 40)
    libc.mallopt(m_top_pad, 256 << 20)


_keep_freed_memory()
