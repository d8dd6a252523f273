"""Operating-system settings a live audio process asks for: locked memory and a CPU wake-up
latency request. Both are what Linux real-time audio guides recommend, both are refused
quietly without the permission (the stream then runs as before), and both are undone when
the stream stops.

- :func:`locked_memory`: ``mlockall`` keeps every page of the process (code of the shared
  libraries the model runs in, weights, buffers) resident, so the audio thread never waits
  for a page to come back from disk or from the hypervisor.
- :func:`cpu_dma_latency`: holding ``/dev/cpu_dma_latency`` open with a value (µs) is the
  kernel's PM QoS request that idle CPUs wake within that time: with 0 they poll instead of
  halting, so an audio thread woken by the server starts at once (what ``cyclictest`` does by
  default). It costs power: idle CPUs spin while the stream runs.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import resource
import struct

MCL_CURRENT, MCL_FUTURE = 1, 2
#: The kernel's PM QoS interface for the CPU wake-up latency request.
CPU_DMA_LATENCY = "/dev/cpu_dma_latency"


def _libc():
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


@contextlib.contextmanager
def locked_memory():
    """Lock the process's pages in RAM (``mlockall``) while the block runs; yields whether it did.

    Future allocations are locked too only where the lock limit cannot be hit (root, or an
    unlimited ``RLIMIT_MEMLOCK``): a finite limit with ``MCL_FUTURE`` would make a later
    allocation fail instead. Never raises; on platforms without ``mlockall`` yields False.
    """
    libc = _libc()
    locked = False
    if libc is not None and hasattr(libc, "mlockall"):
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        flags = MCL_CURRENT | (MCL_FUTURE if os.geteuid() == 0 or soft == resource.RLIM_INFINITY else 0)
        locked = libc.mlockall(flags) == 0
    try:
        yield locked
    finally:
        if locked:
            libc.munlockall()


@contextlib.contextmanager
def cpu_dma_latency(us: int | None, path: str = CPU_DMA_LATENCY):
    """Hold a PM QoS CPU wake-up latency request of ``us`` microseconds while the block runs.

    Yields True if the request is held (the file opened and took the 32-bit value), False if
    it was refused (no such file, no permission) or ``us`` is None. The request ends when the
    file is closed on exit, as the kernel defines it.

    Raises:
        ValueError: ``us`` is negative.
    """
    if us is None:
        yield False
        return
    if us < 0:
        raise ValueError(f"the CPU wake-up latency must be >= 0 us, got {us}")
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        yield False
        return
    try:
        try:
            held = os.write(fd, struct.pack("=i", int(us))) == 4
        except OSError:
            held = False
        yield held
    finally:
        os.close(fd)


def calling_thread_scheduling() -> tuple[int, int]:
    """The calling thread's scheduling policy and priority (``os.SCHED_*``, without the
    ``SCHED_RESET_ON_FORK`` flag PipeWire's real-time threads carry; priority 0 for non-real-time
    policies); ``(-1, 0)`` where the platform has no ``sched_getscheduler``."""
    if not hasattr(os, "sched_getscheduler"):
        return -1, 0
    try:
        policy = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
        return policy, os.sched_getparam(0).sched_priority
    except OSError:
        return -1, 0


def follow_scheduling(policy: int, priority: int) -> bool:
    """Give the calling thread the real-time ``policy`` (``os.SCHED_FIFO`` / ``SCHED_RR``, as
    :func:`calling_thread_scheduling` reports it) one step below ``priority`` (at 1, the lowest,
    the same priority), so the thread it follows (an audio callback) preempts it, or ties with
    it, and ordinary processes do not. For any other policy it returns the calling thread to
    ``SCHED_OTHER``. Best effort, never raises: returns whether the thread now runs real-time
    (False also where the platform lacks it or without the permission: RLIMIT_RTPRIO /
    CAP_SYS_NICE)."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    policy &= ~getattr(os, "SCHED_RESET_ON_FORK", 0)
    rt_policies = {getattr(os, n) for n in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, n)}
    try:
        if policy not in rt_policies:
            if calling_thread_scheduling()[0] in rt_policies:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            return False
        os.sched_setscheduler(0, policy, os.sched_param(max(1, priority - 1)))
        return True
    except OSError:
        return False
