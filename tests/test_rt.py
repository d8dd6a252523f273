"""OS requests of a live stream: locked memory and the PM QoS CPU wake-up latency request."""
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rtgan.engine import rt
from rtgan.engine.rt import cpu_dma_latency

RT_PY = Path(__file__).resolve().parents[1] / "rtgan" / "engine" / "rt.py"


def test_wakeup_request_writes_a_32_bit_value_and_ends_on_exit(tmp_path):
    # the kernel's interface takes a binary s32 in microseconds and drops the request on close
    f = tmp_path / "cpu_dma_latency"
    f.write_bytes(b"")
    with cpu_dma_latency(0, path=str(f)) as held:
        assert held is True
        assert f.read_bytes() == struct.pack("=i", 0)
    fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with cpu_dma_latency(125, path=str(f)) as held:
        assert held and f.read_bytes() == struct.pack("=i", 125)
    if fds is not None:  # nothing left open: the request is withdrawn
        assert set(os.listdir("/proc/self/fd")) == fds


def test_wakeup_request_refused_or_not_asked(tmp_path):
    missing = tmp_path / "no" / "such" / "file"
    with cpu_dma_latency(0, path=str(missing)) as held:
        assert held is False
    with cpu_dma_latency(None, path=str(missing)) as held:
        assert held is False
    assert not missing.exists()
    with pytest.raises(ValueError, match=">= 0"):
        with cpu_dma_latency(-1, path=str(missing)):
            pass


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_locked_memory_locks_and_unlocks():
    # in a small child process (locking a process with torch loaded pages in all of it):
    # VmLck in /proc/self/status is the kernel's count of locked memory
    code = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("rt", {str(RT_PY)!r})
rt = importlib.util.module_from_spec(spec); spec.loader.exec_module(rt)
def vmlck():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmLck")).split()[1])
with rt.locked_memory() as locked:
    inside = vmlck()
print(locked, inside, vmlck())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    locked, inside, after = out[0] == "True", int(out[1]), int(out[2])
    if locked:
        assert inside > 0
    else:  # refused (no permission, or over RLIMIT_MEMLOCK): nothing was locked
        assert inside == 0
    assert after == 0


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="no sched_setscheduler on this platform")
def test_a_thread_follows_a_real_time_caller_one_priority_below_or_is_left_alone():
    """follow_scheduling in a fresh thread: a non-real-time policy leaves a non-real-time thread as
    it was; SCHED_FIFO at priority 10 gives that thread SCHED_FIFO 9 where the process may (CAP_SYS_NICE or
    RLIMIT_RTPRIO >= 9), else returns False and leaves it as it was; a later non-real-time
    caller returns it to SCHED_OTHER."""
    import threading
    before = rt.calling_thread_scheduling()
    if before[0] != os.SCHED_OTHER:
        pytest.skip(f"the tests run under scheduling policy {before[0]}, not SCHED_OTHER")
    seen = {}

    def body():
        seen["other"] = (rt.follow_scheduling(os.SCHED_OTHER, 0), rt.calling_thread_scheduling())
        seen["fifo"] = (rt.follow_scheduling(os.SCHED_FIFO, 10), rt.calling_thread_scheduling())

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen["other"] == (False, before)  # a new thread starts with its creator's policy
    ok, sched = seen["fifo"]
    assert sched == ((os.SCHED_FIFO, 9) if ok else before)
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < 9:
        assert not ok  # (root may still lack CAP_SYS_NICE in a container: either outcome there)
    if ok:  # and back: a caller without a real-time policy returns the thread to SCHED_OTHER
        seen.clear()

        def twice():
            rt.follow_scheduling(os.SCHED_FIFO, 10)
            seen["back"] = (rt.follow_scheduling(os.SCHED_OTHER, 0), rt.calling_thread_scheduling())
        t = threading.Thread(target=twice)
        t.start()
        t.join()
        assert seen["back"] == (False, (os.SCHED_OTHER, 0))


def test_the_reset_on_fork_flag_of_a_pipewire_thread_is_not_part_of_the_policy():
    """PipeWire's real-time threads run SCHED_FIFO | SCHED_RESET_ON_FORK; sched_getscheduler
    reports the flag with the policy. follow_scheduling treats such a policy as SCHED_FIFO."""
    if not hasattr(os, "SCHED_RESET_ON_FORK"):
        pytest.skip("no SCHED_RESET_ON_FORK here")
    import threading
    seen = {}

    def body():
        seen["r"] = (rt.follow_scheduling(os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, 10), rt.calling_thread_scheduling())
    t = threading.Thread(target=body)
    t.start()
    t.join()
    ok, sched = seen["r"]
    assert ok == (sched == (os.SCHED_FIFO, 9))
    plain = {}
    t = threading.Thread(target=lambda: plain.setdefault("r", rt.follow_scheduling(os.SCHED_FIFO, 10)))
    t.start()
    t.join()
    assert ok == plain["r"]  # the flag changes nothing about whether it is granted
