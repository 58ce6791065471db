"""Training on several processes with PyTorch's own engine: ``torchrun`` starts them, DDP syncs them.

``gnnformer train ...`` runs unchanged under ``torchrun --nproc-per-node N`` (or ``--nnodes`` with a
rendezvous): :func:`context` joins the process group that torchrun describes in the environment
(gloo on CPUs, NCCL when every process has its own GPU), the model is wrapped in
``DistributedDataParallel``, and:

- batches of graphs: every process draws the same global batches (the same seeded order), takes
  its contiguous share of each, and weights its loss so that DDP's average of the gradients is the
  gradient of the mean loss over the whole global batch, as one process would compute it;
- one large graph in node partitions (``node_batch_size``): each step takes one partition per
  process, weighted the same way; the whole graph in one step has nothing to share;
- validation and test: each process evaluates a share of the batches and the outputs are
  gathered in order, so the metrics equal one process's;
- only rank 0 writes (metrics, checkpoints, plots, the resume state) and shows progress.

BatchNorm statistics stay per process (DDP's default): a model with BatchNorm trained on N
processes sees batches of B/N for its statistics; on GPUs ``torch.nn.SyncBatchNorm`` would share
them, on CPUs PyTorch does not offer it.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any, List, Sequence

import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """The process that writes outputs and shows progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Context()


def context(device: torch.device, timeout_s: float = 300.0) -> Context:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1 in the environment), once;
    ``SINGLE`` otherwise. ``timeout_s`` bounds how long a collective waits for a process that
    died before the job is ended with an error."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        try:
            dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as err:
            raise UserError(f"Cannot join the distributed run ({err}); start it with torchrun.") from None
    return Context(dist.get_rank(), dist.get_world_size())


def device_for(device: torch.device) -> torch.device:
    """The GPU of this process under torchrun (``LOCAL_RANK``), else ``device``."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def share(items: Sequence[Any], ctx: Context) -> List[Any]:
    """This process's contiguous share of ``items`` (the first ``len % world`` shares one longer)."""
    n = len(items)
    size, extra = divmod(n, ctx.world)
    start = ctx.rank * size + min(ctx.rank, extra)
    return list(items[start:start + size + (1 if ctx.rank < extra else 0)])


def loss_weight(local: int, total: int, ctx: Context) -> float:
    """The factor on a process's mean loss over ``local`` of the step's ``total`` items that makes
    DDP's average of the gradients the gradient of the mean over all ``total``."""
    return ctx.world * local / total if total else 0.0


def gather(obj: Any, ctx: Context) -> List[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` on one process)."""
    if not ctx.active:
        return [obj]
    out: List[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module, ctx: Context, device: torch.device) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` under torchrun, else as it is."""
    if not ctx.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # static_graph: every step uses the same parameters, so DDP learns once which ones take part
    # (a model may leave some unused) instead of walking the autograd graph after every step, as
    # find_unused_parameters=True would, with a warning on every run.
    return DistributedDataParallel(model, device_ids=ids, static_graph=True)
