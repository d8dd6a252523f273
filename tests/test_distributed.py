"""Distributed training: ``torchrun --nproc_per_node 2 -m rtgan.cli train ...`` on two CPU processes (gloo).

The workers run ``rtgan.cli`` as ``torchrun -m rtgan.cli`` would (``runpy``, as ``__main__``),
with one addition made here, not in the package: when the loop's ``train`` returns, each rank
writes its trainable networks' weights to ``rank<RANK>.safetensors``. The test then compares the
replicas tensor by tensor.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from rtgan.checkpoint import read_checkpoint
from rtgan.training.config import config_from_dict
from rtgan.training.loop import init_state, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                       reason="needs torch.distributed with the gloo backend"),
]

WORKER = '''
import os, runpy, sys
from safetensors.torch import save_file
import rtgan.training.loop as loop

_train = loop.train

def train(*args, **kwargs):
    state = _train(*args, **kwargs)
    tensors = {f"{name}.{k}": v.detach().cpu().clone().contiguous()
               for name in sorted(state.optimisers) for k, v in state.nets[name].state_dict().items()}
    save_file(tensors, os.path.join(os.environ["RTGAN_TEST_DUMP"], f"rank{os.environ['RANK']}.safetensors"))
    return state

loop.train = train  # rtgan train imports it from the module when it runs
runpy.run_module("rtgan.cli", run_name="__main__", alter_sys=True)
'''


def _ours(token: str) -> list[int]:
    """Processes (of this user) whose environment holds ``token``: the launcher's workers."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if f"RTGAN_TEST_TOKEN={token}".encode() in (p / "environ").read_bytes().split(b"\0"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def _run_torchrun(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run ``python -m torch.distributed.run ARGS``; on a timeout (or any error) leave no process behind.

    The launcher starts each worker in a session of its own, so the workers are found by a
    token in their environment (on Linux) and killed by pid after the launcher had its chance
    to stop them.
    """
    token = uuid.uuid4().hex
    env = {**env, "RTGAN_TEST_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the launcher stops its workers on SIGTERM
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s; output:\n{out}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if Path("/proc/self/environ").exists():
            for _ in range(50):
                left = _ours(token)
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)


def _weights(tensors: dict, prefixes=("generator.", "discriminator.")) -> dict:
    return {k: v for k, v in tensors.items() if k.startswith(prefixes) and "optim" not in k}


def _train_2_ranks(corpus, run: Path, dump: Path, steps: int, tmp_path: Path) -> dict:
    """``rtgan train sr-hifigan --preset tiny`` on 2 CPU ranks to ``steps``; the ranks' weights after it."""
    dump.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {**os.environ, "RTGAN_TEST_DUMP": str(dump), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    if sys.platform.startswith("linux") and "GLOO_SOCKET_IFNAME" not in env and Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo on the loopback, whatever the host name resolves to
    # --standalone: a local rendezvous on a free port that the launcher picks itself
    res = _run_torchrun(["--standalone", "--nnodes", "1", "--nproc_per_node", "2", str(worker),
                         "train", "sr-hifigan", "--data", str(corpus), "--preset", "tiny", "--steps", str(steps),
                         "--run-dir", str(run), "--device", "cpu", "-q"], env, timeout=240)
    assert res.returncode == 0, res.stdout
    # only rank 0 logs validations (and writes files)
    assert res.stdout.count(f"rtgan.training.loop: step {steps} val") == 1, res.stdout

    from safetensors.torch import load_file
    ranks = [load_file(dump / f"rank{r}.safetensors") for r in range(2)]
    assert any(k.startswith("generator.") for k in ranks[0]) and any(k.startswith("discriminator.") for k in ranks[0])
    assert sorted(ranks[0]) == sorted(ranks[1])
    for k in ranks[0]:  # the replicas are bit-identical
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    # rank 0's checkpoint holds those weights
    tensors, meta = read_checkpoint(run / "last.safetensors")
    assert meta["step"] == steps
    ckpt = _weights(tensors)
    assert sorted(ckpt) == sorted(ranks[0])
    assert all(torch.equal(ckpt[k], ranks[0][k]) for k in ckpt)
    return {"weights": ranks[0], "meta": meta}


def test_two_cpu_processes_keep_identical_replicas_and_resume(corpus, tmp_path):
    """2 ranks x 3 tiny sr-hifigan steps (adversarial from step 0), then resumed to 4: replicas stay bit-identical."""
    run = tmp_path / "run"
    first = _train_2_ranks(corpus, run, tmp_path / "dump3", 3, tmp_path)
    meta = first["meta"]
    assert meta["distributed"] == {"world_size": 2, "backend": "gloo",
                                   "examples_per_step": 2 * meta["train_config"]["batch_size"]}

    # training happened: both networks moved away from their initial weights
    cfg = config_from_dict(meta["train_config"])
    init = init_state(cfg, torch.device("cpu"))
    for name in ("generator", "discriminator"):
        start = {f"{name}.{k}": v for k, v in init.nets[name].state_dict().items()}
        assert any(not torch.equal(start[k], first["weights"][k]) for k in start), f"{name} did not train"

    # the ranks trained on different batches, their gradients averaged: rank 0 keeps a single
    # process's data seeds, so a single-process run (rank 0's batches alone) ends elsewhere
    alone = train(cfg, corpus, tmp_path / "alone", device="cpu", progress=False)
    single = {f"{name}.{k}": v for name in ("generator", "discriminator")
              for k, v in alone.nets[name].state_dict().items()}
    assert any(not torch.equal(single[k], first["weights"][k]) for k in single)

    # every rank resumes from rank 0's checkpoint and the replicas stay identical
    second = _train_2_ranks(corpus, run, tmp_path / "dump4", 4, tmp_path)
    assert second["meta"]["resumed_from_step"] == 3 and len(second["meta"]["command_history"]) == 2
    assert any(not torch.equal(first["weights"][k], second["weights"][k]) for k in first["weights"])


def test_python_dash_m_rtgan_cli_runs_the_command():
    """``torchrun -m rtgan.cli`` needs ``python -m rtgan.cli``."""
    res = subprocess.run([sys.executable, "-m", "rtgan.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("rtgan ")
