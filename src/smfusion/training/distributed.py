"""Multi-process training with PyTorch DistributedDataParallel, with the semantics of one process.

Launched by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``
in the environment; one machine or several) or by ``smfusion train --nproc N``,
which starts ``torchrun --standalone`` on this machine. Backend: gloo on CPU,
NCCL when the run trains on CUDA devices (one per process, ``LOCAL_RANK``).

Every process seeds and draws the *same* global minibatch (same sampler, same
RNG), runs the model on its own contiguous slice of ``batch_size / N`` rows,
and all-gathers the model outputs (:class:`_Gather`), so the objective is
computed on the whole global batch exactly as in one process. The gather's
backward hands each process the gradient of its own rows, times N; DDP then
averages the parameter gradients over the processes, which gives the
gradient of the one-process loss. Hence the same loss curve as one process
up to floating-point summation order -- except for dropout, whose masks each
process draws for its own rows (equal in distribution, not in value).
Validation is computed by every process on the whole validation set (same
weights, same decision for early stopping); only rank 0 writes files.

Teardown: a process leaves the group with :meth:`Dist.close` in a ``finally`` -- a barrier (on the
normal path), a garbage collection (nothing that holds the group's work survives it), then
``destroy_process_group``, which joins the backend's threads -- and, launched by torchrun, ends with
:func:`exit_process`: flushed output, then ``os._exit``, without the interpreter's finalization.
Why: a thread still running while the interpreter finalizes -- a communication thread of the
backend holding work, or a library's I/O thread (zarr's asyncio loop, seen still running at exit on a
loaded machine: "Thread did not finish cleanly") -- is stopped by ``pthread_exit`` when it asks for
the GIL; inside a C++ ``noexcept`` frame the C++ runtime then aborts the process ("terminate called
without an active exception", SIGABRT) after a run that succeeded. Not reproduced here (4 runs of
the DDP test under load before the fix passed); the fix removes both the in-flight work and the
finalization.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as tdist

from smfusion.errors import ConfigError

__all__ = ["Dist", "from_env", "cuda_device_count", "exit_process"]


def cuda_device_count() -> int:
    """The CUDA devices torch sees on this machine (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class _Gather(torch.autograd.Function):
    """All-gather along rows; backward: this rank's rows of the gradient, times the world size."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = tdist.get_world_size()
        ctx.rank, ctx.world, ctx.n = tdist.get_rank(), world, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        tdist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n] * ctx.world


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    """Rows of every process, in rank order (no gradient)."""
    parts = [torch.empty_like(x) for _ in range(tdist.get_world_size())]
    tdist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@dataclass
class Dist:
    """This process's place in the group (see the module docstring)."""

    rank: int
    world: int
    local_rank: int
    local_world: int = 0  # processes on this machine (torchrun's LOCAL_WORLD_SIZE; 0: all ``world`` of them)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self, device: str) -> str:
        """Join the process group; returns the device this process trains on."""
        self.check_device(device)
        cuda = device.startswith("cuda") and torch.cuda.is_available()
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device

    def check_device(self, device: str) -> None:
        """A CUDA run needs a device of its own for this process (``LOCAL_RANK``): NCCL cannot share one."""
        if not device.startswith("cuda"):
            return
        n = cuda_device_count()
        if self.local_rank >= n:
            raise ConfigError(f"training.device {device} with {self.world} processes: process {self.local_rank} of "
                              f"this machine has no CUDA device of its own ({n} here); use at most {n} processes "
                              "per machine, or device cpu")

    def check_machine(self, device: str, threads: Optional[int]) -> None:
        """This machine's processes against its cores and memory (:func:`smfusion.resources.check_processes`;
        a CUDA run is bounded by its devices, :meth:`check_device`)."""
        from smfusion.resources import check_processes

        if device.startswith("cuda"):
            return
        check_processes(self.local_world or self.world, "--nproc", threads=threads or 1)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ConfigError(f"training.batch_size {batch_size} must be a multiple of the {self.world} processes")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=ids)

    def loss(self, net: torch.nn.Module, objective, batch: dict[str, torch.Tensor]):
        """The objective of the whole global ``batch`` with the model run on this process's rows only."""
        n = next(iter(batch.values())).shape[0]
        self.check_batch(n)
        k = n // self.world
        rows = slice(self.rank * k, (self.rank + 1) * k)
        local = {key: (v[rows] if v.ndim and v.shape[0] == n else v) for key, v in batch.items()}
        pred = net(local)
        full = {key: (_Gather.apply(v) if torch.is_tensor(v) and v.ndim and v.shape[0] == k else v)
                for key, v in pred.items()}
        return objective(full, batch)

    def loss_local(self, net: torch.nn.Module, objective, local: dict[str, torch.Tensor]):
        """The objective of the global minibatch when each process holds only its own rows (a streamed
        minibatch, :mod:`smfusion.data.stream_loader`): the model outputs and the targets (keys ``y*``)
        are gathered, the inputs stay where they were read."""
        pred = net(local)
        k = next(iter(local.values())).shape[0]
        full = {key: (_Gather.apply(v) if torch.is_tensor(v) and v.ndim and v.shape[0] == k else v)
                for key, v in pred.items()}
        targets = {key: _all_gather(v) for key, v in local.items() if key.startswith("y")}
        return objective(full, targets)

    def barrier(self) -> None:
        tdist.barrier()

    def close(self, ok: bool = True) -> None:
        """Leave the group so that no thread of it outlives this call (see "Teardown" in the module docstring).

        ``ok``: every process got here normally, so a last barrier is safe (after a failure in one process
        the others may never reach it: they leave without it, and torchrun stops the group).
        """
        if not tdist.is_initialized():
            return
        try:
            if ok:
                tdist.barrier()  # no process closes its connections while another still sends on them
        finally:
            gc.collect()  # model wrappers, gathered tensors, pending work: released while the group is whole
            tdist.destroy_process_group()


def exit_process(code: int) -> None:
    """End a torchrun worker process with ``code`` once its output is flushed, skipping the interpreter's
    finalization (module docstring, "Teardown"); its files are written atomically before this."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def from_env() -> Optional[Dist]:
    """The process's group when launched by torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Dist(rank=int(os.environ["RANK"]), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                local_world=int(os.environ.get("LOCAL_WORLD_SIZE", world)))
