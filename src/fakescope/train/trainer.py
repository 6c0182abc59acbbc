"""The training loop behind `fakescope train`.

BCE-with-logits on the fake logit (1 = fake). The best epoch is chosen on the
validation split's frame-level AUC (ties: lower validation loss) and written as
a fakescope checkpoint (`best.pt`) that `fakescope scan --model` reads; the
test split never takes part. `last.pt` holds everything needed to continue.

Exact resume. A run is a pure function of its config: data order comes from a
sampler seeded with seed + epoch; augmentation is reseeded per sample from
(seed, epoch, index) (see augment.py); every DataLoader has its own generator,
so making loaders never draws from the global RNGs; and the global RNGs
(Python, NumPy, torch, CUDA), which dropout uses, are saved in `last.pt` at
step boundaries together with model, optimizer, scheduler, GradScaler, the
position inside the epoch and the running train loss. Resuming restores all of
it and skips the batches already done, so the continued run takes the same
steps, with the same batches and dropout masks, as an uninterrupted one.

Synthetic fakes (`data.train.synthesis`). The real rows of the train data go
through `SyntheticFakeDataset`: whether item i is turned fake in epoch e, how,
and its mask, are drawn from a generator seeded with (synthesis seed, e, i) only,
where the synthesis seed is derived from the run seed; the augmentation after it
is reseeded from (seed, e, i) like any item's. Landmarks are computed (or read
from `landmarks_json`) before training and never change. So a synthetic sample
depends on no process state either, and resume stays exact. Items carry a
"mask" (1,H,W) and "has_mask": 1 for the synthetic set (its reals too: their
mask is known to be empty), 0 for real fake rows mixed in with
`keep_real_fakes` (zero mask, left out of the mask loss). `loss.mask_weight`
adds a per-pixel BCE on the model's "mask" logits against that target,
area-downsampled to the mask's size.
Clips (`data.sequence`). For models with video heads the items are clips of K
consecutive frames of one video (`VideoClipDataset`), drawn by video or by frame row,
their start and their augmentation (one draw for all K frames) keyed by (seed, epoch,
index) like everything else, so resume stays exact. A batch of B clips is one forward
of B x K frames (`_ClipModel`): L = (1 - v) BCE(frame logits, clip label per frame) +
v BCE(video_logits(features as (B, K, D), head), clip labels), v = `loss.video_weight`.
Validation tiles each val video into clips: frame metrics over every val row as
without clips, video metrics (AUC, DFDC log loss, accuracy) over one score per video.
`last.pt` is written at every epoch end, every `train.checkpoint_every` steps,
when `train.max_steps` is reached, and when SIGINT/SIGTERM asks the run to stop
(it stops at the next step boundary; a second Ctrl-C stops at once).

Multi-process. Under `torchrun` (WORLD_SIZE > 1) each process trains a shard
of every epoch (DistributedSampler semantics) inside DistributedDataParallel,
gloo on CPU, NCCL on CUDA. Rank 0 alone validates, logs and writes files; the
others wait at a barrier. The validation loss is broadcast so a plateau
schedule steps identically everywhere, and every rank's RNG state is gathered
into `last.pt` so a resume on the same number of processes is exact too.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import random
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sklearn.metrics import roc_auc_score
from torch import distributed as dist
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler, Sampler
# Imported here, before any seeding, so no import can draw from the global RNGs
# between a checkpoint and its resume.
from torch.utils.tensorboard import SummaryWriter

from ..data.dataset import FaceCropDataset, VideoClipDataset, normalise
from ..data.manifest import Manifest, ManifestError
from ..data.splits import shared_videos
from ..data.synthesis import SyntheticFakeDataset
from ..errors import FakescopeError
from ..models.base import MODELS, TRAIN_STATE_FORMAT, DetectorModel, PreprocessSpec, build_model, save_checkpoint
from .augment import Augmenter, build_augmenter
from ..device import resolve_device
from ..models.predictor import Predictor
from .config import OPERATIONAL_KEYS, ConfigError, SplitSource, SynthesisSection, TrainConfig
from .sam import SAM

STATE_FORMAT = TRAIN_STATE_FORMAT
STATE_VERSION = 1
METRIC_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_auc", "val_auc_mean", "val_acc", "lr", "seconds"]
#: appended to METRIC_COLUMNS in runs with data.sequence: the video head's scores, one per val video
VIDEO_METRIC_COLUMNS = ["val_video_auc", "val_video_logloss", "val_video_acc", "val_videos"]
#: DFDC's log loss clips probabilities to [eps, 1 - eps]
LOGLOSS_EPS = 1e-15
#: train.select -> the metrics row key that picks best.pt
SELECT_KEYS = {"auc": "val_auc", "mean_dataset_auc": "val_auc_mean", "video_auc": "val_video_auc"}


@dataclass
class TrainResult:
    output_dir: Path
    best_checkpoint: Optional[Path]
    best: Optional[dict]
    epochs_completed: int
    global_step: int
    stopped_early: bool  # max_steps or a stop signal ended it before train.epochs
    seconds: float
    stop_requested: bool = False  # SIGINT/SIGTERM ended it


def train(config: TrainConfig, resume: bool = False, console: Optional[Console] = None) -> TrainResult:
    """Run (or with resume=True continue) the training a config describes."""
    context = _Distributed(config)
    try:
        return _Run(config, context, console or Console(stderr=True)).fit(resume)
    finally:
        context.close()


# ---------------------------------------------------------------------------- processes and devices


class _Distributed:
    """World size, rank and device; joins the process group when torchrun started us."""

    def __init__(self, config: TrainConfig):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0")) if self.world > 1 else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0")) if self.world > 1 else 0
        self.device = _resolve_device(config.train.device, self.local_rank if self.world > 1 else None)
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            # Rank 0 validates while the others wait at a barrier: allow long validations.
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(hours=2))
            self.owns_group = True

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def barrier(self) -> None:
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _resolve_device(name: str, local_rank: Optional[int]) -> torch.device:
    try:
        return resolve_device(name, local_rank)
    except FakescopeError as exc:
        raise ConfigError(f"train.device: {exc.message}") from None


# ---------------------------------------------------------------------------- data


class _TrainDataset(FaceCropDataset):
    """FaceCropDataset whose augmentation is reseeded from (seed, epoch, offset + index) per
    sample. With `with_mask` (mixed with synthetic fakes) its items also carry an all-zero
    "mask" and "has_mask" 0, so they batch with the synthetic ones and stay out of the mask loss."""

    def __init__(self, manifest: Manifest, preprocess: PreprocessSpec, augment: Optional[Augmenter], seed: int,
                 offset: int = 0, with_mask: bool = False):
        super().__init__(manifest, preprocess, augment)
        self.seed = seed
        self.epoch = 0
        self.offset = offset
        self.with_mask = with_mask

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        if self.augment is not None:
            self.augment.reseed(self.seed, self.epoch, self.offset + index)
        item = super().__getitem__(index)
        if self.with_mask:
            size = self.preprocess.input_size
            item["mask"] = torch.zeros(1, size, size)
            item["has_mask"] = torch.tensor(0.0)
        return item


def _synthesis_seed(seed: int) -> int:
    """The synthetic fakes' seed: derived from the run's, but a stream of its own (the
    augmentation is keyed by the same (seed, epoch, index))."""
    return int(np.random.SeedSequence([seed, 0x5B1]).generate_state(1)[0])


class _SyntheticTrainDataset(SyntheticFakeDataset):
    """SyntheticFakeDataset whose items are augmented (image and mask alike) after the
    fake is made, reseeded from (seed, epoch, index); every item has_mask 1."""

    def __init__(self, manifest: Manifest, preprocess: PreprocessSpec, section: SynthesisSection,
                 augment: Optional[Augmenter], seed: int, landmarks_json: Optional[Path]):
        super().__init__(manifest, preprocess, kind=section.kind, seed=_synthesis_seed(seed), p_fake=section.p_fake,
                         landmarks_json=landmarks_json)
        self.augment = augment
        self.augment_seed = seed

    def __getitem__(self, index: int) -> dict:
        image, mask, label = self.make(index)
        if self.augment is not None:
            self.augment.reseed(self.augment_seed, self.epoch, index)
            image, mask = self.augment.with_mask(image, mask)
        return {
            "image": normalise(image, self.preprocess), "label": torch.tensor(label),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None],
            "has_mask": torch.tensor(1.0), "index": index,
        }


def _set_epoch(dataset, epoch: int) -> None:
    for part in dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]:
        part.set_epoch(epoch)


class _ClipModel(nn.Module):
    """A detector run on B clips of K frames at once: one forward of the (B*K, 3, H, W)
    frames, then the named video head on their features as (B, K, D). Adds "video_logits"
    (B,) to the model's output. A module, so DistributedDataParallel wraps the video head
    too (its parameters are then used inside the wrapped forward)."""

    def __init__(self, model: DetectorModel, head: str):
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, frames: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
        out = self.model(frames)
        features = out["features"]
        out["video_logits"] = self.model.video_logits(features.reshape(features.shape[0] // k, k, -1), self.head)
        return out


def clip_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, k: int, video_weight: float) -> torch.Tensor:
    """(1 - v) BCE(frame logits of the B*K frames, their clip's label) + v BCE(video logits, the
    B clip labels): ASRID's L = w L_static + (1 - w) L_dynamic with w = 1 - v."""
    frame = F.binary_cross_entropy_with_logits(out["logits"].float(), labels.repeat_interleave(k))
    video = F.binary_cross_entropy_with_logits(out["video_logits"].float(), labels)
    return (1.0 - video_weight) * frame + video_weight * video


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = LOGLOSS_EPS) -> float:
    """DFDC's metric: mean binary cross-entropy of probabilities clipped to [eps, 1 - eps]."""
    if not len(labels):
        return float("nan")
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


class BalancedSampler(DistributedSampler):
    """Each epoch, len(dataset) draws with replacement, both classes equally likely;
    seeded by seed + epoch and sharded across processes like DistributedSampler."""

    def __init__(self, dataset, labels: list[int], num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        counts = np.bincount(np.asarray(labels), minlength=2)
        if (counts == 0).any():
            raise ConfigError("data.balanced: the train data has only one class; there is nothing to balance")
        self.weights = torch.as_tensor(1.0 / counts[np.asarray(labels)], dtype=torch.double)

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator).tolist()
        return iter(drawn[self.rank:self.total_size:self.num_replicas])


class _Skip(Sampler):
    """A sampler without its first `skip` indices: continuing an epoch mid-way."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        iterator = iter(self.sampler)
        for _ in range(self.skip):
            next(iterator, None)
        return iterator

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


# ---------------------------------------------------------------------------- optimizer and schedule

BATCHWISE_SCHEDULES = ("cosine_restarts", "onecycle")  # step after every optimizer step; plateau after validation


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = config.optim
    sgd = dict(lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    adamw = dict(lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    try:
        if o.name == "adamw":
            return torch.optim.AdamW(model.parameters(), **adamw)
        if o.name == "sgd":
            return torch.optim.SGD(model.parameters(), **sgd)
        if o.base == "sgd":
            return SAM(model.parameters(), torch.optim.SGD, rho=o.rho, **sgd)
        return SAM(model.parameters(), torch.optim.AdamW, rho=o.rho, **adamw)
    except ValueError as exc:  # e.g. nesterov without momentum
        raise ConfigError(f"optim: {exc}") from None


class LinearWarmup:
    """optim.warmup_steps: optimizer step s (0-based) < steps runs at the scheduled rate x
    (s + 1) / steps. The rates are scaled around the step and put back after it, so the
    schedule (closed-form or, like plateau, reading the rate it set) never sees the
    scaling, and the warm-up depends on the step count alone (exact on resume)."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int):
        self.optimizer, self.steps = optimizer, int(steps)

    def factor(self, step: int) -> float:
        return 1.0 if step >= self.steps else (step + 1) / self.steps

    @contextmanager
    def scaled(self, step: int):
        factor = self.factor(step)
        if factor == 1.0:
            yield
            return
        groups = self.optimizer.param_groups
        scheduled = [group["lr"] for group in groups]
        for group in groups:
            group["lr"] = group["lr"] * factor
        try:
            yield
        finally:
            for group, lr in zip(groups, scheduled):
                group["lr"] = lr


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """The configured LR schedule, or None. Batch-wise schedules count optimizer steps
    (cosine_restarts' t0 is given in epochs and converted), so a resume mid-epoch
    lands on the same learning rate."""
    s, o = config.schedule, config.optim
    if s.name == "cosine_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=s.t0 * steps_per_epoch, T_mult=s.t_mult, eta_min=s.eta_min)
    if s.name == "onecycle":
        has_momentum = o.name == "adamw" or (o.name == "sam" and o.base == "adamw") or o.momentum > 0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=s.max_lr or o.lr, total_steps=config.train.epochs * steps_per_epoch,
            pct_start=s.pct_start, anneal_strategy=s.anneal, div_factor=s.div_factor,
            final_div_factor=s.final_div_factor, cycle_momentum=has_momentum)
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=s.factor, patience=s.patience, threshold=s.threshold,
            min_lr=s.min_lr, cooldown=s.cooldown)
    return None


# ---------------------------------------------------------------------------- RNG state


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # CUDA generators too


def _rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank, 0x7EA1]).generate_state(1)[0])


def _rng_state(device: torch.device) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------- small helpers


@contextmanager
def _bn_stats_frozen(model: nn.Module):
    """SAM's second pass runs at perturbed weights: keep its batch statistics out of
    the running means (momentum 0 leaves them unchanged)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


class _StopRequest:
    """SIGINT/SIGTERM ask the run to stop at the next step boundary (with last.pt);
    a second SIGINT interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _config_differences(old: dict, new: dict) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [
        f"{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in keys
        if a.get(k) != b.get(k) and not any(k == op or k.startswith(op + ".") for op in OPERATIONAL_KEYS)
    ]


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.8g}"


def _auc(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(roc_auc_score(labels, probs)) if len(np.unique(labels)) == 2 else float("nan")


def _mean_dataset_auc(labels: np.ndarray, probs: np.ndarray, datasets: list) -> float:
    """Mean over the datasets that have both classes of their own AUC (NaN when none has)."""
    names = np.asarray([str(d) for d in datasets])
    aucs = [_auc(labels[names == name], probs[names == name]) for name in sorted(set(names))]
    aucs = [a for a in aucs if math.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _is_better(candidate: dict, best: Optional[dict], key_name: str = "val_auc") -> bool:
    """Higher validation AUC (`key_name`: pooled or per-dataset mean); ties (or AUCs that
    cannot be computed) go to lower loss."""
    if best is None:
        return True

    def key(m):
        auc = m.get(key_name)
        return (auc if auc is not None and math.isfinite(auc) else -math.inf, -m["val_loss"])

    return key(candidate) > key(best)


# ---------------------------------------------------------------------------- the run


class _Run:
    def __init__(self, config: TrainConfig, context: _Distributed, console: Console):
        self.cfg = config
        self.dist = context
        self.device = context.device
        self.console = console
        self.out = config.output_dir
        self.seed = config.effective_seed
        self.history: list[dict] = []
        self.best: Optional[dict] = None
        self.global_step = 0
        self.stop = _StopRequest()
        self.sequence = config.data.sequence
        self.video_head = None
        if self.sequence is not None:
            self.video_head = self.sequence.head
        self.metric_columns = METRIC_COLUMNS + (VIDEO_METRIC_COLUMNS if self.sequence is not None else [])

    # -- printing ------------------------------------------------------------

    def say(self, message: str, style: str = "") -> None:
        if self.dist.main:
            text = escape(message)
            self.console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.say(f"warning: {message}", "yellow")

    # -- setup ---------------------------------------------------------------

    def _load_state(self, resume: bool) -> Optional[dict]:
        last = self.out / "last.pt"
        if not resume:
            if last.exists():
                raise ConfigError(
                    f"output: {self.out} already holds a run (last.pt); continue it with --resume, "
                    "or set another output"
                )
            return None
        if not last.is_file():
            raise ConfigError(f"--resume: nothing to resume in {self.out} (no last.pt)")
        try:
            state = torch.load(last, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"--resume: {last} is not readable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"--resume: {last} is not a fakescope training state")
        if state["config_hash"] != self.cfg.config_hash():
            changes = _config_differences(state["config"], self.cfg.canonical())
            listed = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
            raise ConfigError(
                f"--resume: the config differs from the run in {self.out} at {listed or 'its hash'}; "
                "resuming would not reproduce it (undo the change, or train into a new output)"
            )
        if self.cfg.schedule.name == "onecycle" and state["config"]["train"]["epochs"] != self.cfg.train.epochs:
            raise ConfigError(
                f"train.epochs: a onecycle schedule fixes the run's length; it started with "
                f"{state['config']['train']['epochs']} epochs"
            )
        if state["world_size"] != self.dist.world:
            self.warn(
                f"the run started on {state['world_size']} process(es) and continues on {self.dist.world}: "
                "data shards and random streams change, so it will not match an uninterrupted run"
            )
        self.seed = int(state["seed"])
        return state

    def _load_init(self, value: str):
        from ..models.zoo import load_detector

        path = self.cfg.resolve_path(value, "model.init")
        try:
            return load_detector(str(path) if path.exists() else value)
        except FakescopeError as exc:
            raise ConfigError(f"model.init: {exc.message}") from None

    def _build_model(self) -> tuple[DetectorModel, PreprocessSpec]:
        section = self.cfg.model
        base_preprocess = MODELS.get(section.arch).default_preprocess
        try:
            model = build_model(section.arch, **section.kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.kwargs: {section.arch} rejects them: {exc}") from None
        if section.init:
            detector = self._load_init(section.init)
            if detector.arch != section.arch:
                raise ConfigError(f"model.init: {section.init} is a {detector.arch} checkpoint, but model.arch is {section.arch}")
            try:
                model.load_state_dict(detector.model.state_dict())
            except RuntimeError as exc:
                raise ConfigError(f"model.init: weights do not fit {section.arch} with these kwargs: {str(exc).splitlines()[0]}") from None
            base_preprocess = detector.preprocess
        if self.cfg.train.bn_momentum is not None:  # a training setting: not stored in checkpoints
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = self.cfg.train.bn_momentum
        preprocess = self.cfg.preprocess_spec(base_preprocess)
        size = preprocess.input_size
        model.eval()  # no dropout, no batch-norm updates: this probe leaves no trace
        try:
            with torch.no_grad():
                out = model(torch.zeros(2, 3, size, size))
        except Exception as exc:
            raise ConfigError(f"preprocess.input_size: {section.arch} cannot take {size}x{size} faces "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        if not isinstance(out, dict) or "logits" not in out or tuple(out["logits"].shape) != (2,):
            raise ConfigError(f"model.arch: {section.arch} does not return {{'logits': (B,)}} as detectors must")
        if self.cfg.loss.mask_weight > 0:
            mask = out.get("mask")
            if mask is None:
                raise ConfigError(f"loss.mask_weight: {self.cfg.loss.mask_weight} needs a model with a mask head, but "
                                  f"{section.arch} (kwargs {section.kwargs}) returns no 'mask'; enable its mask head "
                                  "or set loss.mask_weight: 0")
            if mask.dim() != 4 or tuple(mask.shape[:2]) != (2, 1):
                raise ConfigError(f"loss.mask_weight: {section.arch}'s 'mask' output is {tuple(mask.shape)}, "
                                  "not (B, 1, h, w)")
        if self.sequence is not None:
            self._probe_video_head(model, out)
        model.train()
        return model, preprocess

    def _probe_video_head(self, model: DetectorModel, out: dict) -> None:
        section = self.cfg.model
        heads = tuple(model.video_heads)
        if self.video_head not in heads:  # (the config checked the class; an instance may differ)
            raise ConfigError(f"data.sequence.head: {section.arch} has no video head {self.video_head!r}; "
                              f"its heads: {', '.join(heads) or 'none'}")
        features = out.get("features")
        if features is None or features.dim() != 2 or features.shape[0] != 2:
            raise ConfigError(f"data.sequence: {section.arch} returns no (B, D) 'features' for its video head")
        with torch.no_grad():
            video = model.video_logits(features.reshape(1, 2, -1), self.video_head)
        if tuple(video.shape) != (1,):
            raise ConfigError(f"data.sequence: {section.arch}.video_logits gives {tuple(video.shape)} for one clip, not (1,)")

    def _manifest(self, key: str, source: Optional[SplitSource] = None) -> tuple[Manifest, Path]:
        source = source if source is not None else getattr(self.cfg.data, key)
        path = self.cfg.resolve_path(source.manifest, f"data.{key}.manifest")
        try:
            manifest = Manifest.read(path)
        except ManifestError as exc:
            raise ConfigError(f"data.{key}.manifest: {exc.message}") from None
        if source.split is not None:
            chosen = manifest.filter(split=source.split)
            if not len(chosen):
                splits = sorted({s.split for s in manifest if s.split})
                raise ConfigError(f"data.{key}.split: no rows with split {source.split!r} in {path}; "
                                  f"splits there: {', '.join(splits) or 'none'}")
            manifest = chosen
        missing = [s.path for s in manifest if not manifest.resolve(s.path).is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(f"data.{key}: {manifest.resolve(missing[0])} does not exist{more}")
        return manifest, path

    def _setup_data(self, preprocess: PreprocessSpec) -> None:
        (train_manifest, self.train_path), (val_manifest, self.val_path) = self._manifest("train"), self._manifest("val")
        if self.cfg.data.extra_train:
            # One manifest of absolute paths: the sources' relative paths may clash.
            parts = [train_manifest] + [self._manifest(f"extra_train[{i}]", source)[0]
                                        for i, source in enumerate(self.cfg.data.extra_train)]
            train_manifest = Manifest([replace(s, path=str(m.resolve(s.path))) for m in parts for s in m.samples],
                                      train_manifest.root)
        overlap = {str(train_manifest.resolve(s.path).resolve()) for s in train_manifest} & {
            str(val_manifest.resolve(s.path).resolve()) for s in val_manifest}
        if overlap:
            raise ConfigError(f"data: {len(overlap)} image(s) are in both train and val (e.g. {sorted(overlap)[0]}); "
                              "validation must be held out")
        # what the checkpoint learnt from, so `evaluate` can warn about leakage (data/fingerprints.py)
        self._data_paths = {"train": [train_manifest.resolve(s.path) for s in train_manifest],
                            "val": [val_manifest.resolve(s.path) for s in val_manifest]}
        self._fingerprints: Optional[dict[str, str]] = None
        for key, manifest in (("train", train_manifest), ("val", val_manifest)):
            if len(set(manifest.labels())) < 2 and getattr(self.cfg.data, key).synthesis is None:
                self.warn(f"data.{key} holds only label {manifest.labels()[0]}"
                          + ("; validation AUC cannot be computed" if key == "val" else ""))
        data = self.cfg.data
        augmenter = build_augmenter(self.cfg.augment)
        if self.sequence is not None:
            self._setup_clips(train_manifest, val_manifest, preprocess, augmenter)
            train_labels = self.train_ds.labels()  # one per clip
        else:
            self._setup_frames(train_manifest, val_manifest, preprocess, augmenter)
            train_labels = train_manifest.labels()
        if data.balanced:
            self.sampler: DistributedSampler = BalancedSampler(
                self.train_ds, train_labels, self.dist.world, self.dist.rank, self.seed)
        else:
            self.sampler = DistributedSampler(
                self.train_ds, num_replicas=self.dist.world, rank=self.dist.rank, shuffle=True, seed=self.seed)
        self.steps_per_epoch = math.ceil(len(self.sampler) / data.batch_size)

    def _setup_frames(self, train_manifest: Manifest, val_manifest: Manifest, preprocess: PreprocessSpec,
                      augmenter: Optional[Augmenter]) -> None:
        """Single faces: the manifests' rows, or synthetic fakes from their reals."""
        data = self.cfg.data
        if preprocess.subject == "image":
            self._setup_images(train_manifest, val_manifest, preprocess, augmenter)
            return
        if data.train.synthesis is None:
            self.train_ds = _TrainDataset(train_manifest, preprocess, augmenter, self.seed)
        else:
            self.train_ds = self._synthetic("train", train_manifest, preprocess, augmenter)
        if data.val.synthesis is None:
            self.val_ds = FaceCropDataset(val_manifest, preprocess)
            self.val_datasets = [s.dataset for s in val_manifest]
        else:  # one fixed set of fakes: epoch 0 for good, no augmentation
            self.val_ds = self._synthetic("val", val_manifest, preprocess, None)
            self.val_datasets = None  # synthetic val rows count as one dataset

    def _setup_images(self, train_manifest: Manifest, val_manifest: Manifest, preprocess: PreprocessSpec,
                      augmenter: Optional[Augmenter]) -> None:
        """Whole-image models (preprocess.subject "image"): random native-resolution crops after
        augmenting the whole picture in training, centre crops in validation (data/images.py)."""
        from ..data.images import WholeImageDataset

        data = self.cfg.data
        if data.train.synthesis is not None or data.val.synthesis is not None:
            raise ConfigError("data.*.synthesis: synthetic fakes are faces; not with preprocess.subject image")
        if self.cfg.augment.face_part_cutout.p > 0:
            raise ConfigError("augment.face_part_cutout: face parts do not apply to preprocess.subject image; set p: 0")
        classes = self.cfg.model.kwargs.get("attribution_classes") or ("real", "gan", "diffusion")
        self.train_ds = WholeImageDataset(train_manifest, preprocess, augmenter, self.seed, train=True,
                                          attribution_classes=classes)
        self.val_ds = WholeImageDataset(val_manifest, preprocess, attribution_classes=classes)
        self.val_datasets = [s.dataset for s in val_manifest]

    def _setup_clips(self, train_manifest: Manifest, val_manifest: Manifest, preprocess: PreprocessSpec,
                     augmenter: Optional[Augmenter]) -> None:
        """data.sequence: clips of K frames of one video (see VideoClipDataset)."""
        if preprocess.subject == "image":
            raise ConfigError("data.sequence: clips are of faces; not with preprocess.subject image")
        section = self.sequence
        shared = shared_videos(train_manifest, val_manifest)
        if shared:
            raise ConfigError(f"data: {len(shared)} video(s) have frames in both train and val (e.g. video "
                              f"{shared[0][-1]!r}); split by video, e.g. `fakescope split --val 0.2 --test 0.1`")
        self.train_ds = VideoClipDataset(train_manifest, preprocess, section.frames, section.sample_by, augmenter, self.seed)
        self.val_ds = VideoClipDataset(val_manifest, preprocess, section.frames, "tile")
        self.val_datasets = [s.dataset for s in val_manifest]
        for key, dataset in (("train", self.train_ds), ("val", self.val_ds)):
            if dataset.short_videos:
                self.say(f"data.{key}: {dataset.short_videos} of {len(dataset.videos)} video(s) have fewer than "
                         f"{section.frames} frames; their clips repeat the last frame")
        if len(set(self.val_ds.video_labels)) < 2:
            self.warn("data.val: the val videos are all of one class; the video AUC cannot be computed")

    def _synthetic(self, key: str, manifest: Manifest, preprocess: PreprocessSpec, augmenter: Optional[Augmenter]):
        """Synthetic fakes from the real rows (plus, with keep_real_fakes, the fake rows as they are)."""
        section: SynthesisSection = getattr(self.cfg.data, key).synthesis
        reals = Manifest([s for s in manifest.samples if int(s.label) == 0], manifest.root)
        fakes = Manifest([s for s in manifest.samples if int(s.label) != 0], manifest.root)
        if not len(reals):
            raise ConfigError(f"data.{key}.synthesis: the {key} data has no real faces (label 0) to make fakes from")
        landmarks = (self.cfg.resolve_path(section.landmarks_json, f"data.{key}.synthesis.landmarks_json")
                     if section.landmarks_json else None)
        # Absolute, normalised paths as landmark keys: the same face has the same key in any manifest.
        reals = Manifest([replace(s, path=str(reals.resolve(s.path).resolve())) for s in reals.samples], reals.root)
        synthetic = _SyntheticTrainDataset(reals, preprocess, section, augmenter, self.seed, landmarks)
        self._landmarks(synthetic, key, landmarks)
        if not section.keep_real_fakes or not len(fakes):
            return synthetic
        # The real fakes follow the synthetic items; their augmentation keys continue the index.
        plain = _TrainDataset(fakes, preprocess, augmenter, self.seed, offset=len(synthetic), with_mask=True)
        return ConcatDataset([synthetic, plain])

    def _landmarks(self, dataset: SyntheticFakeDataset, key: str, path: Optional[Path]) -> None:
        """Every face's landmarks before training (MTCNN where the cache lacks them): loader
        workers then share them, and nothing is detected mid-run. Rank 0 writes the cache."""
        cached = dataset.landmarks.entries
        missing = sum(1 for s in dataset.manifest.samples if s.path not in cached)
        if self.dist.main and missing:
            self.say(f"data.{key}.synthesis: finding landmarks of {missing} face(s) with MTCNN"
                     + (f" (cached in {path})" if path else " (set landmarks_json to keep them)"))
            started = time.perf_counter()
            dataset.precompute_landmarks()
            if path is not None:
                dataset.save_landmarks()
            self.say(f"  done in {time.perf_counter() - started:.0f} s")
        self.dist.barrier()
        if not self.dist.main and missing:
            if path is not None and path.is_file():
                dataset.landmarks.entries.update(json.loads(path.read_text()))
            dataset.precompute_landmarks()
        found = sum(1 for s in dataset.manifest.samples if dataset.landmarks.entries.get(s.path) is not None)
        if found < len(dataset):
            self.warn(f"data.{key}.synthesis: no landmarks for {len(dataset) - found} of {len(dataset)} face(s); "
                      "their masks fall back to a central ellipse (and X-ray fakes to SBI)")

    def _loader(self, dataset, batch_size: int, sampler=None, seed: int = 0) -> DataLoader:
        generator = torch.Generator()
        generator.manual_seed(seed)  # its own generator: building loaders never touches the global RNG
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=self.cfg.data.num_workers,
            generator=generator, pin_memory=self.device.type == "cuda", drop_last=False,
        )

    def _train_loader(self, epoch: int, skip_batches: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        _set_epoch(self.train_ds, epoch)
        bs = self.cfg.data.batch_size
        sampler = _Skip(self.sampler, skip_batches * bs) if skip_batches else self.sampler
        return self._loader(self.train_ds, bs, sampler, seed=self.seed + epoch)

    def _amp(self) -> bool:
        amp, cuda = self.cfg.train.amp, self.device.type == "cuda"
        if amp is True and not cuda:
            self.warn("train.amp: true is ignored: mixed precision runs on CUDA only")
        if cuda and amp is not False and self.cfg.optim.name == "sam":
            if amp is True:
                self.warn("train.amp: off with SAM (GradScaler cannot check SAM's two-pass step)")
            return False
        return cuda and amp is not False

    # -- training ------------------------------------------------------------

    def fit(self, resume: bool) -> TrainResult:
        started = time.perf_counter()
        state = self._load_state(resume)
        _seed_all(self.seed)  # model initialisation draws from here
        model, self.preprocess = self._build_model()
        self._setup_data(self.preprocess)
        self.memory_format = torch.channels_last if self.cfg.train.channels_last else torch.contiguous_format
        model.to(self.device, memory_format=self.memory_format)
        self.module = model
        self.optimizer = build_optimizer(self.cfg, model)
        self.scheduler = build_scheduler(self.cfg, self.optimizer, self.steps_per_epoch)
        self.warmup = LinearWarmup(self.optimizer, self.cfg.optim.warmup_steps)
        self.batchwise = self.cfg.schedule.name in BATCHWISE_SCHEDULES
        self.use_amp = self._amp()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

        epoch, batches_done, loss_sum, seen, carried_seconds = 0, 0, 0.0, 0, 0.0
        if state is not None:
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            progress = state["progress"]
            epoch, batches_done = progress["epoch"], progress["batches_done"]
            carried_seconds = progress["epoch_seconds"]
            self.global_step = progress["global_step"]
            self.best, self.history = state["best"], list(state["history"])

        self.clip_model = _ClipModel(model, self.video_head) if self.sequence is not None else None
        self.model: nn.Module = self.clip_model if self.clip_model is not None else model
        if self.dist.distributed:
            # Video heads that this run does not train (frame-only, or another head) get no gradients.
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=bool(model.video_heads))
        writer = self._open_outputs(state is not None)

        # Last of all, the random state the training steps draw from (dropout).
        if state is not None and state["world_size"] == self.dist.world:
            mine = state["ranks"][self.dist.rank]
            loss_sum, seen = mine["loss_sum"], mine["seen"]
            _set_rng_state(mine["rng"], self.device)
        elif state is not None:
            _seed_all(_rank_seed(self.seed, self.dist.rank) + self.global_step)
        else:
            _seed_all(_rank_seed(self.seed, self.dist.rank))

        epochs = self.cfg.train.epochs
        max_steps = self.cfg.train.max_steps
        stopped_early = False
        if state is not None:
            self.say(f"resuming {self.out} at epoch {epoch + 1}, step {self.global_step}")
        if epoch >= epochs or (max_steps and self.global_step >= max_steps):
            self.say(f"{self.out}: nothing left to do ({epoch} epoch(s), step {self.global_step})")
        self.stop.install()
        try:
            with self._progress() as bar:
                while epoch < epochs and not (max_steps and self.global_step >= max_steps):
                    epoch_started = time.perf_counter() - carried_seconds
                    interrupted, loss_sum, seen, batches_done = self._train_epoch(
                        epoch, batches_done, loss_sum, seen, bar, writer, epoch_started)
                    if interrupted:
                        self._save_last(epoch, batches_done, loss_sum, seen, time.perf_counter() - epoch_started)
                        stopped_early = True
                        why = "stop requested" if self.stop.requested else f"train.max_steps={max_steps} reached"
                        self.say(f"{why}: stopped at epoch {epoch + 1}, step {self.global_step}; "
                                 f"continue with --resume")
                        break
                    self._end_epoch(epoch, loss_sum, seen, time.perf_counter() - epoch_started, writer, bar)
                    epoch, batches_done, loss_sum, seen, carried_seconds = epoch + 1, 0, 0.0, 0, 0.0
                    self._save_last(epoch, 0, 0.0, 0, 0.0)
                    if self._stop_agreed() and epoch < epochs:
                        stopped_early = True
                        self.say(f"stop requested: stopped after epoch {epoch}; continue with --resume")
                        break
                else:
                    stopped_early = epoch < epochs
                    if stopped_early:
                        self.say(f"train.max_steps={max_steps} reached after epoch {epoch}; continue with --resume")
        finally:
            self.stop.restore()
            if writer is not None:
                writer.close()
        self.dist.barrier()
        best_path = self.out / "best.pt"
        if self.best is not None:
            self.say(f"best: epoch {self.best['epoch']}, val AUC {_fmt(self.best['val_auc'])}, "
                     f"val loss {_fmt(self.best['val_loss'])} -> {best_path}", "bold")
        return TrainResult(
            output_dir=self.out, best_checkpoint=best_path if best_path.is_file() else None, best=self.best,
            epochs_completed=epoch, global_step=self.global_step, stopped_early=stopped_early,
            seconds=time.perf_counter() - started, stop_requested=self.stop.requested,
        )

    def _progress(self):
        if not self.dist.main:
            return Progress(disable=True)
        return Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=self.console, transient=True,
            disable=not self.console.is_terminal,
        )

    def _forward_loss(self, batch: dict) -> torch.Tensor:
        if self.sequence is not None:
            k = self.sequence.frames
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
                out = self.model(batch["image"], k)
            loss = clip_loss(out, batch["label"], k, self.cfg.loss.video_weight)
            for term in self.module.training_losses(out, batch["label"].repeat_interleave(k)).values():
                loss = loss + term.float()
            return loss
        if "family" in batch:  # whole-image attribution: the class targets of this forward (models/image_forensics.py)
            self.module.set_attribution_targets(batch["family"])
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            out = self.model(batch["image"])
        loss = F.binary_cross_entropy_with_logits(out["logits"].float(), batch["label"])
        weight = self.cfg.loss.mask_weight
        if weight > 0:
            loss = loss + weight * self._mask_loss(out["mask"].float(), batch["mask"], batch["has_mask"])
        for term in self.module.training_losses(out, batch["label"]).values():  # the paper's own extra terms
            loss = loss + term.float()
        return loss

    def _mask_loss(self, logits: torch.Tensor, target: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
        """Per-pixel BCE, averaged per sample, then over the samples with has_mask = 1
        (0 when the batch has none). The target (blending mask M, or 4 M (1 - M)) is made at
        full resolution and area-downsampled to the logits' size: each cell gets its mean."""
        if self.cfg.loss.mask_target == "boundary":
            target = 4.0 * target * (1.0 - target)
        if target.shape[-2:] != logits.shape[-2:]:
            target = F.interpolate(target, size=logits.shape[-2:], mode="area")
        per_sample = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_sample * has_mask).sum() / has_mask.sum().clamp(min=1.0)

    def _clip(self) -> None:
        if self.cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.optim.grad_clip)

    def _step(self, batch: dict) -> torch.Tensor:
        images = batch["image"]
        if self.sequence is not None:  # (B, K, 3, H, W) clips -> (B*K, 3, H, W) frames, clip by clip
            images = images.flatten(0, 1)
        inputs = {
            "image": images.to(self.device, non_blocking=True, memory_format=self.memory_format),
            "label": batch["label"].to(self.device, non_blocking=True).float(),
        }
        if "family" in batch and getattr(self.module, "attribution_classes", None):
            inputs["family"] = batch["family"].to(self.device, non_blocking=True).long()
        if self.cfg.loss.mask_weight > 0:
            inputs["mask"] = batch["mask"].to(self.device, non_blocking=True).float()
            inputs["has_mask"] = batch["has_mask"].to(self.device, non_blocking=True).float()
        frame_labels = inputs["label"]
        if self.sequence is not None:
            frame_labels = frame_labels.repeat_interleave(self.sequence.frames)
        with torch.no_grad():
            inputs["image"] = self.module.augment_training_batch(inputs["image"], frame_labels)
        self.optimizer.zero_grad(set_to_none=True)
        with self.warmup.scaled(self.global_step):
            loss = self._optimizer_step(inputs)
        if self.batchwise:
            self.scheduler.step()
        return loss

    def _next_lr(self) -> float:
        """The (first group's) rate the next optimizer step runs at, warm-up included."""
        return self.optimizer.param_groups[0]["lr"] * self.warmup.factor(self.global_step)

    def _micro_batches(self, inputs: dict) -> list[tuple[dict, float]]:
        """`inputs` cut into chunks of train.micro_batch samples (whole clips), each with its
        share of the batch; the whole batch as one chunk without micro-batching."""
        size, batch = self.cfg.train.micro_batch, int(inputs["label"].shape[0])
        if not size or size >= batch:
            return [(inputs, 1.0)]
        frames = self.sequence.frames if self.sequence is not None else 1  # image rows per sample
        chunks = []
        for start in range(0, batch, size):
            stop = min(start + size, batch)
            part = {key: value[start * frames:stop * frames] if key == "image" else value[start:stop]
                    for key, value in inputs.items()}
            chunks.append((part, (stop - start) / batch))
        return chunks

    def _backward(self, inputs: dict, scale=lambda loss: loss) -> torch.Tensor:
        """Forward and backward over the micro-batches, gradients summed (DDP syncs on the last
        only); returns the batch loss, the chunks' losses weighted by their shares (detached)."""
        chunks = self._micro_batches(inputs)
        total = torch.zeros((), device=self.device)
        for i, (part, share) in enumerate(chunks):
            defer_sync = self.dist.distributed and i < len(chunks) - 1
            with self.model.no_sync() if defer_sync else nullcontext():
                loss = self._forward_loss(part) * share
                scale(loss).backward()
            total += loss.detach()
        return total

    def _optimizer_step(self, inputs: dict) -> torch.Tensor:
        """Gradients of the batch and one optimizer step; returns the batch loss."""
        if isinstance(self.optimizer, SAM):
            loss = self._backward(inputs)

            def closure():
                self.optimizer.zero_grad(set_to_none=True)
                with _bn_stats_frozen(self.module):
                    second = self._backward(inputs)
                self._clip()
                return second

            self.optimizer.step(closure)
            return loss
        loss = self._backward(inputs, self.scaler.scale)
        if self.cfg.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            self._clip()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def _stop_agreed(self) -> bool:
        """Whether any process was asked to stop; all must stop at the same step."""
        if not self.dist.distributed:
            return self.stop.requested
        flag = torch.tensor([1.0 if self.stop.requested else 0.0], device=self.dist.comm_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.stop.requested = bool(flag.item())
        return self.stop.requested

    def _train_epoch(self, epoch, batches_done, loss_sum, seen, bar, writer, epoch_started):
        self.model.train()
        loader = self._train_loader(epoch, batches_done)
        task = bar.add_task(f"epoch {epoch + 1}/{self.cfg.train.epochs}", total=self.steps_per_epoch,
                            completed=batches_done, info="")
        interval_loss, interval_n = 0.0, 0
        max_steps, every = self.cfg.train.max_steps, self.cfg.train.checkpoint_every
        try:
            for batch in loader:
                loss = self._step(batch).item()
                if not math.isfinite(loss) and not self.use_amp:  # (AMP's scaler skips such steps itself)
                    raise FakescopeError(
                        f"the training loss became {loss} at step {self.global_step + 1}: training diverged; "
                        "lower optim.lr or set optim.grad_clip", code="diverged")
                n = int(batch["label"].shape[0])
                loss_sum += loss * n
                seen += n
                batches_done += 1
                self.global_step += 1
                interval_loss, interval_n = interval_loss + loss * n, interval_n + n
                bar.update(task, advance=1, info=f"loss {loss_sum / max(seen, 1):.4f}")
                if writer is not None and self.global_step % self.cfg.train.log_every == 0:
                    writer.add_scalar("train/loss", interval_loss / interval_n, self.global_step)
                    writer.add_scalar("train/lr", self._next_lr(), self.global_step)
                    interval_loss, interval_n = 0.0, 0
                remaining = batches_done < self.steps_per_epoch
                if remaining and (self._stop_agreed() or (max_steps and self.global_step >= max_steps)):
                    return True, loss_sum, seen, batches_done
                if remaining and every and self.global_step % every == 0:
                    self._save_last(epoch, batches_done, loss_sum, seen, time.perf_counter() - epoch_started)
        finally:
            bar.remove_task(task)
        return False, loss_sum, seen, batches_done

    def _all_sum(self, *values: float) -> list[float]:
        if not self.dist.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.dist.comm_device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def _broadcast(self, value: float) -> float:
        if not self.dist.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.dist.comm_device)
        dist.broadcast(tensor, 0)
        return float(tensor.item())

    def _predictor(self, model) -> Predictor:
        """The one predictor (models/predictor.py) over the model as it is now, on the run's device."""
        return Predictor.for_model(model, self.preprocess, device=self.device, amp=self.use_amp,
                                   memory_format=self.memory_format)

    def _validate(self, bar) -> dict:
        if self.sequence is not None:
            return self._validate_clips(bar)
        batch_size = self.cfg.data.val_batch_size or 2 * self.cfg.data.batch_size
        loader = self._loader(self.val_ds, batch_size)
        task = bar.add_task("validating", total=len(loader), info="")
        logits, labels = [], []
        for batch, out in self._predictor(self.module).dataset_batches(loader):
            logits.append(torch.from_numpy(out["logits"]))
            labels.append(batch["label"].float())
            bar.update(task, advance=1)
        bar.remove_task(task)
        return self._frame_metrics(torch.cat(logits), torch.cat(labels))

    def _frame_metrics(self, logits_t: torch.Tensor, labels_t: torch.Tensor) -> dict:
        loss = F.binary_cross_entropy_with_logits(logits_t, labels_t).item()
        probs, y = torch.sigmoid(logits_t).numpy(), labels_t.numpy().astype(int)
        auc = _auc(y, probs)
        auc_mean = _mean_dataset_auc(y, probs, self.val_datasets or [None] * len(y))
        acc = float(np.mean((probs >= 0.5) == (y == 1)))
        return {"val_loss": loss, "val_auc": auc, "val_auc_mean": auc_mean, "val_acc": acc, "n": int(len(y))}

    def _validate_clips(self, bar) -> dict:
        """Tiled val clips: the frame metrics on every val row (each frame's logit from a clip
        holding it; eval mode scores a frame the same in any clip), the video metrics on the
        mean probability of each video's clips under the video head."""
        k = self.sequence.frames
        batch_size = self.cfg.data.val_batch_size or 2 * self.cfg.data.batch_size
        loader = self._loader(self.val_ds, batch_size)
        task = bar.add_task("validating", total=len(loader), info="")
        manifest = self.val_ds.manifest
        frame_logits = torch.full((len(manifest),), float("nan"))
        video_probs: list[list[float]] = [[] for _ in self.val_ds.videos]
        clip_forward = lambda model, clips: model(clips.flatten(0, 1), k)  # noqa: E731 - (B, K, C, H, W) clips
        for batch, out in self._predictor(self.clip_model).dataset_batches(loader, call=clip_forward):
            frame_logits[batch["rows"].flatten()] = out["logits"].float().cpu()
            for video, p in zip(batch["video"].tolist(), torch.sigmoid(out["video_logits"].float()).cpu().tolist()):
                video_probs[video].append(p)
            bar.update(task, advance=1)
        bar.remove_task(task)
        labels_t = torch.tensor([float(s.label) for s in manifest.samples])
        metrics = self._frame_metrics(frame_logits, labels_t)
        probs = np.array([np.mean(p) for p in video_probs])
        y = np.asarray(self.val_ds.video_labels, dtype=int)
        metrics.update({
            "val_video_auc": _auc(y, probs), "val_video_logloss": log_loss(y, probs),
            "val_video_acc": float(np.mean((probs >= 0.5) == (y == 1))), "val_videos": int(len(y)),
        })
        return metrics

    def _end_epoch(self, epoch: int, loss_sum: float, seen: int, seconds: float, writer, bar) -> None:
        total_loss, total_seen = self._all_sum(loss_sum, float(seen))
        train_loss = total_loss / max(total_seen, 1.0)
        validate = (epoch + 1) % self.cfg.train.val_every == 0 or epoch + 1 == self.cfg.train.epochs
        metrics = None
        if validate:
            if self.dist.main:
                val_started = time.perf_counter()
                metrics = self._validate(bar)
                seconds += time.perf_counter() - val_started
            val_loss = self._broadcast(metrics["val_loss"] if metrics else 0.0)
            if self.cfg.schedule.name == "plateau":
                self.scheduler.step(val_loss)
        if self.dist.main:
            row = {
                "epoch": epoch + 1, "step": self.global_step, "train_loss": train_loss,
                "val_loss": metrics["val_loss"] if metrics else None, "val_auc": metrics["val_auc"] if metrics else None,
                "val_auc_mean": metrics["val_auc_mean"] if metrics else None,
                "val_acc": metrics["val_acc"] if metrics else None, "lr": self._next_lr(),
                "seconds": seconds,
            }
            if self.sequence is not None:
                row.update({key: metrics.get(key) if metrics else None for key in VIDEO_METRIC_COLUMNS})
            self.history.append(row)
            self._write_metrics()
            improved = metrics is not None and _is_better(row, self.best, SELECT_KEYS[self.cfg.train.select])
            if improved:
                self.best = {k: row[k] for k in ("epoch", "step", "val_loss", "val_auc", "val_auc_mean", "val_acc")
                             + (tuple(VIDEO_METRIC_COLUMNS) if self.sequence is not None else ())}
                self._save_best(metrics)
            if writer is not None:
                writer.add_scalar("epoch/train_loss", train_loss, self.global_step)
                writer.add_scalar("epoch/lr", row["lr"], self.global_step)
                if metrics:
                    for key in ("val_loss", "val_auc", "val_acc") + (
                            tuple(VIDEO_METRIC_COLUMNS[:-1]) if self.sequence is not None else ()):  # not the count
                        writer.add_scalar(f"val/{key[4:]}", metrics[key], self.global_step)
                writer.flush()
            parts = [f"epoch {epoch + 1}/{self.cfg.train.epochs}", f"step {self.global_step}", f"train_loss {train_loss:.4f}"]
            if metrics:
                parts += [f"val_loss {metrics['val_loss']:.4f}", f"val_auc {_fmt(metrics['val_auc'])[:6]}"
                          + (f" (mean over datasets {_fmt(metrics['val_auc_mean'])[:6]})"
                             if self.cfg.train.select == "mean_dataset_auc" else ""),
                          f"val_acc {metrics['val_acc']:.3f}"]
                if self.sequence is not None:
                    parts += [f"video ({self.video_head}) auc {_fmt(metrics['val_video_auc'])[:6]} "
                              f"logloss {metrics['val_video_logloss']:.4f}"]
            parts += [f"lr {row['lr']:.2e}", f"{seconds:.1f} s"]
            self.say("  ".join(parts) + ("  (best so far)" if improved else ""))
        self.dist.barrier()

    # -- files ---------------------------------------------------------------

    def _open_outputs(self, resumed: bool):
        if not self.dist.main:
            return None
        self.out.mkdir(parents=True, exist_ok=True)
        header = (f"# fakescope train: the config of this run with every default filled in.\n"
                  f"# Relative paths are relative to {self.cfg.base_dir}. Effective seed: {self.seed}"
                  f"{' (derived from the config hash)' if self.cfg.seed is None else ''}.\n")
        if self.cfg._overrides:
            header += f"# Overrides: {' '.join(self.cfg._overrides)}\n"
        (self.out / "config.yaml").write_text(header + yaml.safe_dump(self.cfg.canonical(), sort_keys=False))
        # On resume, drop events logged after the saved step (they would be logged again).
        writer = SummaryWriter(log_dir=str(self.out / "tensorboard"),
                               purge_step=self.global_step + 1 if resumed else None)
        if not resumed:
            writer.add_text("config", "```\n" + yaml.safe_dump(self.cfg.canonical(), sort_keys=False) + "\n```", 0)
        self._write_metrics()
        return writer

    def _write_metrics(self) -> None:
        buffer = io.StringIO()
        csv_writer = csv.DictWriter(buffer, fieldnames=self.metric_columns, lineterminator="\n")
        csv_writer.writeheader()
        for row in self.history:
            csv_writer.writerow({k: (row[k] if k in ("epoch", "step", "val_videos") else _fmt(row.get(k)))
                                 for k in self.metric_columns})
        _atomic_write_text(self.out / "metrics.csv", buffer.getvalue())

    def _save_best(self, metrics: dict) -> None:
        from .. import __version__

        provenance = {
            "trained_with": f"fakescope {__version__} train", "torch": str(torch.__version__),
            "config": self.cfg.canonical(), "config_sha256": self.cfg.config_hash(),
            "config_file": str(self.cfg._source) if self.cfg._source else None, "overrides": list(self.cfg._overrides),
            "seed": self.seed, "epoch": self.best["epoch"], "step": self.best["step"],
            "selected_on": SELECT_KEYS[self.cfg.train.select],
            "val": {"auc": metrics["val_auc"], "auc_mean_over_datasets": metrics["val_auc_mean"],
                    "loss": metrics["val_loss"], "acc": metrics["val_acc"], "n": metrics["n"],
                    "manifest": str(self.val_path), "split": self.cfg.data.val.split},
            "train": {"manifest": str(self.train_path), "split": self.cfg.data.train.split, "n": len(self.train_ds)},
            "init": self.cfg.model.init, "world_size": self.dist.world,
            "data_fingerprints": self._data_fingerprints(),
        }
        if self.sequence is not None:
            provenance["val"]["video"] = {
                "head": self.video_head, "frames": self.sequence.frames, "auc": metrics["val_video_auc"],
                "logloss": metrics["val_video_logloss"], "acc": metrics["val_video_acc"], "n": metrics["val_videos"]}
            provenance["train"]["clips"] = {"sample_by": self.sequence.sample_by, "videos": len(self.train_ds.videos),
                                            "video_weight": self.cfg.loss.video_weight}
        tmp = self.out / "best.pt.tmp"
        save_checkpoint(tmp, self.module, self.cfg.model.arch, self.preprocess, provenance, self.cfg.model.kwargs)
        os.replace(tmp, self.out / "best.pt")

    def _data_fingerprints(self) -> dict[str, str]:
        if self._fingerprints is None:  # once, at the first best.pt: a few seconds per 10^4 images
            from ..data.fingerprints import file_fingerprint, pack

            self._fingerprints = {part: pack(file_fingerprint(p) for p in paths)
                                  for part, paths in self._data_paths.items()}
        return self._fingerprints

    def _save_last(self, epoch: int, batches_done: int, loss_sum: float, seen: int, epoch_seconds: float) -> None:
        """Collective: every process contributes its RNG state and running loss."""
        mine = {"rng": _rng_state(self.device), "loss_sum": loss_sum, "seen": seen}
        if self.dist.distributed:
            ranks: list = [None] * self.dist.world
            dist.all_gather_object(ranks, mine)
        else:
            ranks = [mine]
        if self.dist.main:
            payload = {
                "format": STATE_FORMAT, "version": STATE_VERSION,
                "config": self.cfg.canonical(), "config_hash": self.cfg.config_hash(), "seed": self.seed,
                "world_size": self.dist.world,
                "model": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(),
                "progress": {"epoch": epoch, "batches_done": batches_done, "global_step": self.global_step,
                             "epoch_seconds": epoch_seconds},
                "ranks": ranks, "best": self.best, "history": self.history,
            }
            tmp = self.out / "last.pt.tmp"
            torch.save(payload, tmp)
            os.replace(tmp, self.out / "last.pt")
        self.dist.barrier()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
