"""Data-parallel training under ``torchrun`` (DistributedDataParallel), shared by every trainer.

    torchrun --standalone --nproc_per_node 2 -m training.train_audio2motion --train corpus/train.h5 -o runs/a2m
    torchrun --standalone --nproc_per_node 2 -m training.train_emotion --data CREMA-D -o runs/emotion
    torchrun --standalone --nproc_per_node 2 -m toonsync train audio2motion    # = `toonsync train`

Without torchrun's environment (``WORLD_SIZE`` unset or 1) everything here is a no-op wrapper and
a run is bit-for-bit the single-process run it always was.

**Sampling.** Both trainers (``train_audio2motion``: random crops of an HDF5 corpus;
``train_emotion``: class-balanced random crops of CREMA-D) draw every batch from one seeded numpy
generator instead of walking a finite dataset epoch by epoch. They therefore split a *global*
batch: every rank draws the same global batch (same seed, same generator calls) and trains on its
own rows (:func:`micro_batches`: micro-batch ``m`` of ``accum``, rows ``rank::world`` of it). Each
rank's loss is its *contribution* to the full-batch loss (the contributions of all ranks and
micro-batches sum to it) and DDP averages gradients, so an optimizer step sees the gradient of the
full global batch, as in a single process; only the floating-point reduction order differs. A
``DistributedSampler`` is the tool for epoch-style trainers (each rank a disjoint slice of a
``Dataset`` per epoch, ``set_epoch`` each epoch); neither trainer here is one, and per-rank random
crops would not reproduce the single-process run.

**Rank 0** alone logs at INFO, shows progress bars, evaluates and writes files (atomically:
temporary file + rename). **Gradient accumulation** (``accum`` micro-batches per optimizer step)
skips DDP's all-reduce on all but the last (``no_sync``). **AMP** (fp16 autocast + ``GradScaler``)
is used only on CUDA; on CPU the autocast context is a no-op and the scaler is disabled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.errors import InputError, ToonsyncError
from toonsync.runtime.progress import active

log = logging.getLogger(__name__)

T = TypeVar("T")
Batch = tuple[torch.Tensor, ...]
# loss_fn(model, micro_batch, global_batch) -> (contribution to backpropagate, {name: contribution to log})
LossFn = Callable[[nn.Module, Batch, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class DistributedError(ToonsyncError, RuntimeError):
    """The torchrun environment is incomplete or inconsistent, or the process group cannot start."""


class BatchSplitError(InputError):
    """The global batch cannot be split evenly over ranks x accumulation steps."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. ``world == 1``: a plain single-process run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs at INFO, shows progress, evaluates and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def backend(self) -> str | None:
        return ("nccl" if self.device.type == "cuda" else "gloo") if self.distributed else None

    def describe(self) -> dict[str, Any]:
        """For the training report (``*.train.json``)."""
        return {"world_size": self.world, "backend": self.backend, "device": str(self.device)}


_CTX: DistContext | None = None  # the context of the process group started by setup(), while alive


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r} is not an integer") from None


def _device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda":
        if not torch.cuda.is_available():
            raise DistributedError("--device cuda was asked for but torch sees no CUDA device")
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise DistributedError(f"LOCAL_RANK {local_rank} but only {n} CUDA device(s): use --nproc_per_node <= {n}")
        return torch.device("cuda", local_rank)
    raise DistributedError(f"unknown device {spec!r} (auto, cpu or cuda)")


def setup(device: str = "auto") -> DistContext:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; with more than one process, start the
    process group (NCCL on CUDA, gloo on CPU) and quiet the logging of ranks other than 0.

    ``device``: ``auto`` (``cuda:LOCAL_RANK`` if CUDA is available, else CPU), ``cpu`` or ``cuda``.
    While a group is alive (started here or by the caller), returns a context for it and starts nothing.
    """
    global _CTX
    if _CTX is not None and dist.is_initialized():
        return _CTX
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if dist.is_available() and dist.is_initialized():  # the caller started the group
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistContext(rank, world, local_rank, _device(device, local_rank))
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise DistributedError(
            f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local_rank}"
        )
    ctx = DistContext(rank, world, local_rank, _device(device, local_rank))
    if not ctx.distributed:
        return ctx
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} but {', '.join(missing)} unset: launch with torchrun")
    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
    try:
        dist.init_process_group(ctx.backend, rank=rank, world_size=world)
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"cannot start the {ctx.backend} process group (rank {rank}/{world}): {e}") from e
    _CTX = ctx
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank-0 logging; warnings and errors still show
    log.info("distributed: %d processes, backend %s, device %s", world, ctx.backend, ctx.device)
    return ctx


def cleanup(wait: bool = False) -> None:
    """Destroy the process group started by :func:`setup` (no-op otherwise). ``wait``: first wait for every rank to
    get here (a run that ended normally), so that no rank tears its group down while another still uses it (rank 0
    evaluating and saving); an abort of a process whose peer is mid-teardown was seen on a loaded 2-core box."""
    global _CTX
    if _CTX is not None and dist.is_initialized():
        if wait and _CTX.distributed:
            dist.barrier()
        dist.destroy_process_group()
    _CTX = None


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[DistContext]:
    """:func:`setup` ... :func:`cleanup` of the group it started; nested sessions share the outer one's."""
    nested = _CTX is not None and dist.is_initialized()
    ctx = setup(device)
    ended = False
    try:
        yield ctx
        ended = True
    finally:
        if not nested:
            cleanup(wait=ended)


@contextlib.contextmanager
def run_session(tcfg: Any) -> Iterator[tuple[DistContext, np.random.Generator]]:
    """A trainer's :func:`session` from its config (``device``, ``batch``, ``accum``, ``seed``, ``threads``):
    checks that the batch splits, seeds torch, sets the CPU threads; yields (context, the seeded numpy
    generator every rank draws its global batches from)."""
    import numpy as np

    with session(tcfg.device) as ctx:
        check_batch(tcfg.batch, ctx, tcfg.accum)
        torch.manual_seed(tcfg.seed)
        torch.set_num_threads(tcfg.threads)
        yield ctx, np.random.default_rng(tcfg.seed)


@contextlib.contextmanager
def main_first(ctx: DistContext, timeout: timedelta = timedelta(hours=12)) -> Iterator[None]:
    """Rank 0 runs the block first while the other ranks wait, then they run it (e.g. build a corpus
    once; the others then find it built). Its own gloo group, so a long block does not hit the
    training group's collective timeout."""
    if not ctx.distributed:
        yield
        return
    group = dist.new_group(backend="gloo", timeout=timeout)
    try:
        if not ctx.is_main:
            dist.barrier(group=group)
        yield
        if ctx.is_main:
            dist.barrier(group=group)
    finally:
        dist.destroy_process_group(group)


@dataclass
class RunSettings:
    """What every image trainer's config holds besides its own settings: seed, CPU threads, how often it
    evaluates, gradient accumulation, device and mixed precision (``run_session``, ``Trainer``)."""

    seed: int = 0
    threads: int = 2
    eval_every: int = 500
    accum: int = 1
    device: str = "auto"
    amp: bool = True


def record_eval(history: list, step: int, t0: float, terms: dict, **extra: Any) -> dict:
    """One evaluation row of a trainer's history: step, seconds since ``t0``, the mean loss ``terms`` (5
    decimals) and ``extra`` (held-out metrics, counters); appended to ``history`` and logged."""
    import time

    rec = {"step": step, "seconds": round(time.time() - t0, 1), **{k: round(v, 5) for k, v in terms.items()}, **extra}
    history.append(rec)
    logging.getLogger("toonsync.training").info("%s", rec)
    return rec


def add_image_trainer_arguments(p: argparse.ArgumentParser, tcfg: Any, mcfg: Any, name: str, batch_help: str) -> None:
    """The flags the image-model trainers share, defaults from their configs ``tcfg`` / ``mcfg``: ``-o/--out``
    (default ``runs/NAME``), ``--steps --batch --lr --seed --threads --eval-every --size --width``."""
    p.add_argument("-o", "--out", type=Path, default=None, help=f"run directory (default runs/{name})")
    p.add_argument("--steps", type=int, default=tcfg.steps)
    p.add_argument("--batch", type=int, default=tcfg.batch, help=batch_help)
    p.add_argument("--lr", type=float, default=tcfg.lr)
    p.add_argument("--seed", type=int, default=tcfg.seed)
    p.add_argument("--threads", type=int, default=tcfg.threads)
    p.add_argument("--eval-every", type=int, default=tcfg.eval_every)
    p.add_argument("--size", type=int, default=mcfg.size)
    p.add_argument("--width", type=int, default=mcfg.width, help="ResNet-18 first-stage channels")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The trainers' shared flags: ``--accum``, ``--device``, ``--no-amp`` (dest ``accum``, ``device``, ``amp``)."""
    p.add_argument(
        "--accum",
        type=int,
        default=1,
        metavar="N",
        help="micro-batches per optimizer step (gradient accumulation); --batch is the global batch "
        "and must be a multiple of processes x N (default 1)",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: cuda:LOCAL_RANK when CUDA is available, else cpu (default auto)",
    )
    p.add_argument(
        "--no-amp",
        dest="amp",
        action="store_false",
        help="no fp16 autocast/GradScaler on CUDA (AMP is never used on CPU)",
    )


def main_function(
    build_parser: Callable[[], argparse.ArgumentParser], run: Callable[[argparse.Namespace], Any]
) -> Callable[[list[str] | None], None]:
    """A trainer module's ``main(argv=None)``: parse ``build_parser()``'s flags, log at INFO, ``run`` them."""

    def main(argv: list[str] | None = None) -> None:
        a = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        run(a)

    return main


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Move ``model`` to the device; with more than one process wrap it in DDP (which broadcasts rank 0's
    weights) and reseed each rank's torch generator with ``initial_seed + rank``, so dropout masks
    differ between ranks as they would between the rows of one batch."""
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model
    ddp = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    torch.manual_seed(torch.initial_seed() + ctx.rank)
    return ddp


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def check_batch(batch: int, ctx: DistContext, accum: int) -> int:
    """Rows per rank per micro-batch; a clear error unless ``batch`` splits evenly."""
    if accum < 1:
        raise BatchSplitError(f"accumulation steps must be >= 1, got {accum}")
    parts = ctx.world * accum
    if batch < parts or batch % parts:
        raise BatchSplitError(
            f"global batch {batch} does not split over {ctx.world} process(es) x {accum} "
            f"accumulation step(s): use a multiple of {parts}"
        )
    return batch // parts


def micro_batches(batch: Sequence[torch.Tensor], ctx: DistContext, accum: int) -> list[Batch]:
    """This rank's share of a global batch: for each of ``accum`` consecutive micro-batches, its rows
    ``rank::world``. Single process, no accumulation: the batch itself."""
    n = batch[0].shape[0]
    check_batch(n, ctx, accum)
    if not ctx.distributed and accum == 1:
        return [tuple(batch)]
    size = n // accum
    out = []
    for m in range(accum):
        rows = torch.arange(m * size + ctx.rank, (m + 1) * size, ctx.world)
        out.append(tuple(t.index_select(0, rows) for t in batch))
    return out


def autocast(ctx: DistContext, enabled: bool = True) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA; a no-op context on CPU."""
    if enabled and ctx.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class Trainer:
    """Optimizer steps over global batches: micro-batches, ``no_sync``, AMP, gradient clipping, LR schedule.

    ``loss_fn(model, micro, batch)`` gets the (wrapped) model, this rank's micro-batch on the device and
    the whole global batch (CPU), and returns ``(total, terms)``: tensors holding this micro-batch's
    *contribution* to the full-batch loss, i.e. values that summed over all ranks and micro-batches give
    the loss of the global batch (a mean over rows: ``mean * rows / batch``). ``total`` is
    backpropagated (times ``world``: DDP averages gradients), ``terms`` are summed for logging.
    """

    def __init__(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
        ctx: DistContext,
        accum: int = 1,
        clip_norm: float | None = 1.0,
        amp: bool = True,
    ):
        self.model, self.opt, self.sched, self.ctx = model, opt, sched, ctx
        self.accum, self.clip_norm = accum, clip_norm
        self.amp = amp and ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def step(self, batch: Sequence[torch.Tensor], loss_fn: LossFn) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch``; returns this rank's summed ``terms`` (see :func:`reduce_sum`)."""
        self.model.train()
        self.opt.zero_grad()
        micro = micro_batches(batch, self.ctx, self.accum)
        sums: dict[str, torch.Tensor] = {}
        for i, mb in enumerate(micro):
            mb = tuple(t.to(self.ctx.device, non_blocking=True) for t in mb)
            sync = self.model.no_sync() if self.ctx.distributed and i < len(micro) - 1 else contextlib.nullcontext()
            with sync:
                with autocast(self.ctx, self.amp):
                    total, terms = loss_fn(self.model, mb, tuple(batch))
                if self.ctx.distributed:
                    total = total * self.ctx.world
                self.scaler.scale(total).backward()
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach() if k in sums else v.detach()
        self.scaler.unscale_(self.opt)
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return sums


def reduce_sum(values: dict[str, torch.Tensor], ctx: DistContext) -> dict[str, float]:
    """Sum per-rank metric contributions over all ranks (a collective: every rank must call it)."""
    if not ctx.distributed:
        return {k: v.item() for k, v in values.items()}
    keys = sorted(values)
    t = torch.stack([values[k].detach().double().reshape(()) for k in keys]).to(ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist(), strict=True))


def progress(it: Iterable[T], ctx: DistContext, **tqdm_kw) -> Iterable[T]:
    """A tqdm bar on rank 0 on a terminal (when tqdm is installed; not with ``toonsync -q``); the bare iterable
    elsewhere."""
    if not ctx.is_main or not active():
        return it
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, **tqdm_kw)


def save_run(ctx: DistContext, out_dir: Path, name: str, checkpoint: dict, info: dict) -> Path | None:
    """Rank 0: write ``name.pt`` (torch.save of ``checkpoint``) and ``name.train.json`` (``info``), each
    atomically. Other ranks write nothing and get None."""
    if not ctx.is_main:
        return None
    path = Path(out_dir) / f"{name}.pt"
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(path.with_suffix(".train.json")) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return path


def finish_run(
    ctx: DistContext,
    out_dir: Path,
    name: str,
    model: nn.Module,
    config: dict,
    info: dict,
    *,
    train_seconds: float,
    metrics: dict,
    history: list,
) -> dict:
    """The end every trainer shares: complete ``info`` (run time, parameter count, metrics, history, torch
    version), save ``name.pt`` (config + state_dict + info) and ``name.train.json`` on rank 0, log it."""
    info = {
        **info,
        "train_seconds": round(train_seconds, 1),
        "params": sum(p.numel() for p in model.parameters()),
        "metrics": metrics,
        "history": history,
        "torch": torch.__version__,
    }
    path = save_run(ctx, out_dir, name, {"config": config, "state_dict": model.cpu().state_dict(), "info": info}, info)
    if path is not None:
        log.info("saved %s (%.0f s): %s", path, train_seconds, metrics)
    return info


def finished(info: dict | None, name: str, run_dir: Path) -> dict | None:
    """What a trainer's ``run`` returns: on rank 0, ``info`` plus ``checkpoint`` (the path of ``run_dir/name.pt``,
    which ``toonsync train MODEL --export DIR`` exports); None on the other ranks."""
    if info is None:
        return None
    return {**info, "checkpoint": str(Path(run_dir) / f"{name}.pt")}
