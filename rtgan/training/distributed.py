"""Data-parallel training across processes: PyTorch DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node N -m rtgan.cli train ...`` starts N copies of ``rtgan train``
with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. The loop
(:func:`rtgan.training.loop.train`) then calls :func:`setup`, which joins the process group
(``gloo`` on CPU, ``nccl`` on CUDA, one GPU per process: ``cuda:LOCAL_RANK``), and :func:`wrap`,
which wraps every trainable network in :class:`~torch.nn.parallel.DistributedDataParallel`.
Without those variables (or with ``WORLD_SIZE=1``) nothing here does anything and a run is the
single-process run it always was.

What changes in a distributed run:

* every rank builds the same networks (the same ``cfg.seed``; DDP also broadcasts rank 0's
  weights when it wraps them) and, on a resume, loads the same checkpoint;
* every rank draws its own batches (``cfg.batch_size`` each, so a step sees
  ``WORLD_SIZE * batch_size`` examples): ranks other than 0 reseed torch, the sampler and the
  corpus crops with :func:`rank_seed` (rank 0 keeps the single-process seeds);
* gradients are averaged across ranks in ``backward`` (DDP), so every optimiser makes the same
  update on every rank and the replicas stay identical: :func:`check_replicas` verifies that
  (by SHA-256 of every trainable network's weights) before each checkpoint;
* every rank validates (the same numbers: same weights, same fixed validation batch, so every
  rank's history is the same), only rank 0 writes checkpoints, snapshots, TensorBoard logs and
  the progress bar; ``max_minutes`` is decided together (:func:`any_rank`).

DDP settings, and why. No buffer broadcast at every forward (``broadcast_buffers=False``;
``forward_sync_buffers=False`` from torch 2.13; buffers are still broadcast once, when wrapped):
the networks' buffers are constants (FIR kernels) or, for spectral normalisation, power-iteration
vectors that each forward updates from the weights alone, so they stay identical on every rank
(:func:`check_replicas` hashes them too; there are no running statistics), and the default would
broadcast them at every forward pass, of which a GAN step has several per network (the critic
sees real and generated audio, the generator's output is made once per critic round).
``find_unused_parameters=False``: in a backward that reaches a network, all of its trainable
parameters get gradients (the generator's whole output feeds its loss; each critic loss uses
every sub-discriminator); a network that is not used in a step (the critic before the
adversarial start) has no forward with a graph either, so DDP expects nothing of it. A
network run twice before one ``backward`` is fine without it: DDP's hooks fire once per
parameter per backward, when its accumulated gradient is ready (a WGAN-GP gradient penalty,
``autograd.grad`` through the critic, works too). A recipe with a trainable parameter that a
backward through its network does not reach would need ``find_unused_parameters=True``; DDP
says so in an error at the following step. The critics' gradients that
the generator's loss makes (through the critic's view of the generated audio) are never used
(the critic step zeroes them first), so the loop computes them under ``no_sync``
(:func:`no_sync`) instead of averaging them across ranks for nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

#: added to ``cfg.seed`` times the rank for the data of ranks other than 0 (a large prime, so
#: rank seeds do not collide with the ``cfg.seed + step`` sampler seeds of resumed runs)
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Context:
    """Where this process stands in a distributed run; ``Context()`` is a single-process run.

    Attributes:
        rank, local_rank, world_size: ``torchrun``'s ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``.
        backend: the process group's backend (``gloo``, ``nccl``); ``None`` in a single process.
        owns_group: this module started the process group (and :func:`shutdown` ends it).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """More than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0


def env_world() -> tuple[int, int, int] | None:
    """``(rank, local_rank, world_size)`` from ``torchrun``'s environment; ``None`` when absent or one process.

    Raises:
        ValueError: variables that are not integers, or a rank outside ``[0, world_size)``.
    """
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ValueError(f"distributed launch: RANK/LOCAL_RANK/WORLD_SIZE must be integers ({e})") from None
    if world <= 1:
        return None
    if not 0 <= rank < world or local < 0:
        raise ValueError(f"distributed launch: RANK {rank}, LOCAL_RANK {local}, WORLD_SIZE {world}")
    return rank, local, world


def setup(device: torch.device, timeout_minutes: float = 30.0) -> tuple[Context, torch.device]:
    """Join the process group when launched by ``torchrun``; ``(Context(), device)`` otherwise.

    On CUDA each process takes ``cuda:LOCAL_RANK`` (whatever index ``device`` names) and the
    ``nccl`` backend; on the CPU, ``gloo``. A process group that is already initialised (a
    caller's) is used as it is and left to its owner.

    Returns:
        the context and the device this process trains on.

    Raises:
        RuntimeError: torch without ``torch.distributed``, or without the backend needed.
        ValueError: a ``LOCAL_RANK`` with no CUDA device of that index; bad environment variables.
    """
    world = env_world()
    if world is None:
        return Context(), device
    rank, local, size = world
    import torch.distributed as dist
    if not dist.is_available():
        raise RuntimeError(f"launched with WORLD_SIZE={size}, but this torch ({torch.__version__}) "
                           "has no torch.distributed")
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local}, but this machine has {torch.cuda.device_count()} CUDA devices "
                             "(use --nproc_per_node at most the number of GPUs)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
        if not dist.is_nccl_available():
            raise RuntimeError("distributed training on CUDA needs the nccl backend, and this torch has none")
    else:
        backend = "gloo"
        if not dist.is_gloo_available():
            raise RuntimeError("distributed training on the CPU needs the gloo backend, and this torch has none")
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=size, timeout=timedelta(minutes=timeout_minutes))
        owns = True
    else:
        backend = dist.get_backend()
        rank, size = dist.get_rank(), dist.get_world_size()
    return Context(rank=rank, local_rank=local, world_size=size, backend=backend, owns_group=owns), device


def shutdown(ctx: Context, wait: bool = True) -> None:
    """End the process group if :func:`setup` started it; with ``wait``, after every rank gets here.

    The barrier lets rank 0 finish its last files before any rank returns (callers on other
    ranks may then read them). Without ``wait`` (after an error) no collective is attempted.
    """
    if not ctx.enabled:
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        return
    if wait:
        dist.barrier()
    if ctx.owns_group:
        dist.destroy_process_group()


def rank_seed(seed: int, ctx: Context) -> int:
    """The data seed of this rank: ``seed`` on rank 0 (as in a single process), offset on the others."""
    return seed + RANK_SEED_STRIDE * ctx.rank


def wrap(nets: dict[str, nn.Module], names, device: torch.device) -> dict[str, nn.Module]:
    """``{name: DistributedDataParallel(nets[name])}`` for each of ``names`` with trainable parameters.

    The wrappers share the networks' parameters (optimisers built on ``nets`` keep working);
    rank 0's weights are broadcast to every rank here. See the module docstring for the settings.
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [device.index] if device.type == "cuda" else None
    # no buffer broadcast at each forward (torch 2.13 renamed the option and deprecated the old name)
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                      else {"broadcast_buffers": False})
    return {name: DDP(nets[name], device_ids=ids, output_device=device.index if ids else None,
                      find_unused_parameters=False, **no_buffer_sync)
            for name in names if any(p.requires_grad for p in nets[name].parameters())}


@contextlib.contextmanager
def no_sync(modules):
    """No gradient averaging for the DDP ``modules`` during the block (forward and backward inside it)."""
    with contextlib.ExitStack() as stack:
        for m in modules:
            stack.enter_context(m.no_sync())
        yield


def any_rank(flag: bool, ctx: Context, device: torch.device) -> bool:
    """Whether ``flag`` is True on any rank (a collective: every rank must call it); ``flag`` in a single process."""
    if not ctx.enabled:
        return flag
    import torch.distributed as dist
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def agree(value, what: str, ctx: Context) -> None:
    """Every rank has the same ``value`` (a collective; nothing in a single process).

    Raises:
        RuntimeError: ranks with different values (naming ``what`` and every rank's value).
    """
    if not ctx.enabled:
        return
    import torch.distributed as dist
    every: list = [None] * ctx.world_size
    dist.all_gather_object(every, value)
    if any(v != every[0] for v in every):
        raise RuntimeError(f"distributed training: ranks disagree on {what}: {every}")


def digest(net: nn.Module) -> str:
    """SHA-256 of ``net``'s state dict: every key, dtype, shape and the bytes of every tensor."""
    h = hashlib.sha256()
    for key, t in net.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_replicas(nets: dict[str, nn.Module], names, ctx: Context) -> dict[str, str]:
    """Every rank's networks ``names`` are bit-identical (a collective); returns their digests.

    Raises:
        RuntimeError: a network whose weights differ between ranks (names the ranks).
    """
    mine = {name: digest(nets[name]) for name in sorted(names)}
    if not ctx.enabled:
        return mine
    import torch.distributed as dist
    every: list = [None] * ctx.world_size
    dist.all_gather_object(every, mine)
    for name in mine:
        differ = [r for r in range(ctx.world_size) if every[r][name] != every[0][name]]
        if differ:
            raise RuntimeError(f"distributed training: the replicas of {name!r} diverged "
                               f"(ranks {differ} differ from rank 0)")
    return mine
