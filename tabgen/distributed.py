"""Several processes on one task, on torch.distributed as torchrun starts them (docs/scale.md).

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in each process's
environment; :func:`join` opens the process group from them (NCCL on GPUs, gloo on CPUs) unless the
caller already has. A single process is a group of one, and every helper here is then a no-op, so
the rest of tabgen calls them unconditionally.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from .errors import TabgenError


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group: ``rank`` of ``size``, ``local`` on its machine."""

    rank: int = 0
    size: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes files (checkpoints, the model) and prints."""
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """This rank's part of ``n`` items: ``(offset, count)``, parts differing by one at most and
        adding up to ``n`` exactly."""
        base, extra = divmod(n, self.size)
        return self.rank * base + min(self.rank, extra), base + (self.rank < extra)


SINGLE = Ranks()


def launched() -> bool:
    """Whether torchrun (or another launcher setting ``WORLD_SIZE``) started this process in a group."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restarted() -> bool:
    """Whether torchrun restarted this group after a process died (``--max-restarts``): the fit then
    goes on from its checkpoint."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def ranks_from_env() -> Ranks:
    """The launcher's ranks, without opening a group (enough for work that needs no messages)."""
    try:
        return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise TabgenError("RANK, WORLD_SIZE and LOCAL_RANK must be integers, as torchrun sets them") from None


_engaged = False


@contextlib.contextmanager
def engaged(on: bool = True) -> Iterator[None]:
    """Inside the block, tabgen's work is shared over the open group (if ``on``); outside it, a process
    is on its own even where a group is open, so that a caller's own group (a training framework's)
    never turns a fit into a distributed one unasked."""
    global _engaged
    previous, _engaged = _engaged, on
    try:
        yield
    finally:
        _engaged = previous


def _group() -> Ranks:
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def current() -> Ranks:
    """The ranks tabgen's work is shared over: the open group's inside :func:`engaged`, else one process."""
    return _group() if _engaged else SINGLE


def join(device: torch.device) -> Ranks:
    """Open the launcher's process group (if it is not open already) and return this process's ranks.
    ``device`` decides the backend: NCCL for CUDA, gloo otherwise."""
    if dist.is_available() and dist.is_initialized():
        return _group()
    if not launched():
        return SINGLE
    if not dist.is_available():
        raise TabgenError("this torch build has no torch.distributed; run one process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(ranks_from_env().local)  # NCCL's messages go through the current GPU
    try:
        dist.init_process_group(backend, **_attempt_store())
    except (ValueError, RuntimeError) as e:
        raise TabgenError(f"could not join the process group ({backend}): {str(e).splitlines()[0]}; "
                          "start the command with torchrun") from None
    return _group()


def _attempt_store() -> dict:
    """Where torchrun's workers share its own store (its default), keys of this attempt only: after a
    restart the store still holds the dead attempt's addresses, and a rank that reads one before its
    peer has written the new one connects to a process that is gone (pytorch#135712)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    ranks = ranks_from_env()
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), ranks.size, is_master=False)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return {"store": dist.PrefixStore(f"tabgen/attempt_{attempt}", store), "rank": ranks.rank, "world_size": ranks.size}


def device_for(device: torch.device, ranks: Ranks) -> torch.device:
    """One GPU per process: rank ``local`` of a machine takes ``cuda:local`` when asked for plain CUDA."""
    if device.type == "cuda" and ranks.size > 1 and device.index is None:
        return torch.device("cuda", ranks.local)
    return device


def _device() -> torch.device:
    """Where the group's messages are made: NCCL sends only GPU tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _reduced(value: float, op: str) -> float:
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op))
    return float(tensor)


def mean(value: float) -> float:
    """The mean of ``value`` over the ranks: every rank gets the same number, so decisions taken from
    it (early stopping, the best epoch, the learning rate) agree."""
    size = current().size
    return value if size == 1 else _reduced(value, "SUM") / size


def largest(value: float) -> float:
    """The largest ``value`` of any rank, on every rank (a deadline seen by one clock stops all of them)."""
    return value if current().size == 1 else _reduced(value, "MAX")


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on one."""
    return bool(largest(float(flag)))


def agreed_seed(seed: int | None) -> int | None:
    """``seed`` as rank 0 has it (drawn there if ``None``): the ranks split the rows and draw the
    initial weights alike."""
    if current().size == 1:
        return seed
    if seed is None:
        seed = int(torch.randint(2**31, (1,)))
    tensor = torch.tensor([seed], dtype=torch.int64, device=_device())
    dist.broadcast(tensor, src=0)
    return int(tensor)


def barrier() -> None:
    if current().size > 1:
        dist.barrier()
