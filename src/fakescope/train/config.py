"""Training recipes: one YAML file, validated strictly.

Why strict: a misspelt key in a training recipe would otherwise fall back to a
default and silently waste a run. Every unknown key and every bad value is an
error that names its place, e.g. ``optim.lrr: unknown key; did you mean lr?``.

Schema (defaults in brackets; every section rejects keys it does not know):

    model:      arch (a registered architecture), kwargs [{}] (its constructor
                arguments), init [none] (a fakescope checkpoint or shipped model
                name to fine-tune from; its preprocessing becomes the default)
    preprocess: input_size, mean, std, margin, face_detector, subject: overrides of the
                architecture's (or init checkpoint's) preprocessing [none]; subject
                image = whole-image samples (fakescope.data.images): training takes a random
                input_size crop of the picture at native resolution after the augmentation
                (which then runs on the whole picture and may rescale it), validation the
                centre crop; no synthesis, sequence or face_part_cutout with it
    data:       train / val: {manifest: CSV or folder, split [whole manifest]};
                batch_size [32]; val_batch_size [2 x batch_size]; num_workers [0];
                balanced [false]: draw classes equally often (with replacement).
                The `test` split is refused: it is for final evaluation only.
                extra_train [[]]: more {manifest, split [whole manifest]} sources
                added to the train data (e.g. the reals of other face sets).
                train.synthesis / val.synthesis [none]: fakes made from real faces
                (see fakescope.data.synthesis): {kind sbi | xray | both [sbi],
                p_fake [0.5]: share of real faces turned fake, landmarks_json [none]:
                cache of the faces' landmarks (MTCNN runs once for any face it does
                not list; keyed by absolute image path), keep_real_fakes [false]:
                also use the manifests' own fake rows (mixed in; they carry no mask)}.
                With synthesis the real rows (of train and every extra_train source)
                become SBI / Face X-ray fakes, fresh each epoch, reproducible from
                (seed, epoch, index); without keep_real_fakes the fake rows are left
                out. On val, synthesis makes one fixed set of fakes (epoch 0, the run's
                seed), for validating where no real fakes exist; it is usually better
                to validate on real fakes (a plain val manifest) when there are any.
                balanced is refused with synthesis (p_fake sets the class balance).
                sequence [none]: train and validate on clips instead of single faces,
                for models with video heads (`video_heads`, e.g. asrid, m2tr):
                {frames [8]: K, sample_by video | picture [video], head (required):
                the video head to train (e.g. temporal)}. A clip is K consecutive
                frames (in the manifest's `frame` order, rows without one in file
                order) of one video (rows
                sharing dataset, label, method and `video`; a row without `video` is a
                one-frame video), labelled with the video's label; a video shorter than
                K repeats its last frame. sample_by says what an epoch draws:
                `video`: every video once (one clip, its start drawn afresh each epoch),
                so long and short videos count alike; `picture`: every frame row once
                (the clip around it, at a random offset), so a video counts by its
                number of frames. batch_size and val_batch_size count clips (a batch
                is B x K frames). Validation tiles every val video into clips that
                cover each frame: the frame metrics are computed on all val rows as
                without sequences, the video metrics on one score per video (the mean
                of its clips' probabilities). Augmentation is the same for the K frames
                of a clip (one draw per clip). Train and val must not share a video:
                split by video (`fakescope split --val 0.2 --test 0.1`, the 7:2:1 of
                `fakescope.data.splits.split_by_video`). Not with synthesis.
    loss:       mask_weight [0: off]: weight of a per-pixel BCE-with-logits between
                the model's "mask" logits and the synthetic fakes' blending mask,
                added to the classification loss (train_loss includes it; val_loss
                is the classification loss alone); the target is area-downsampled to
                the model's mask size. Averaged over the samples that have a mask
                (synthetic fakes and the synthetic set's reals, whose mask is all 0);
                real fake rows do not take part. Needs data.train.synthesis and a
                model that returns "mask". mask_target mask | boundary [mask]:
                the blending mask M, or Face X-ray's boundary 4 M (1 - M)
                (computed at full resolution, then downsampled).
                video_weight [0.2] (with data.sequence only): the clip loss's share,
                1 - w in L = w L_frame + (1 - w) L_video: L_frame is the BCE of the frame
                logits of all B x K frames against their clip's label, L_video the BCE
                of the head's video logits against the clip labels (ASRID: w = 0.8);
                the model's own `training_losses` (on the frame outputs) are added
                unweighted. val_loss stays the frame BCE
    augment:    transforms [[]]: list of {name: albumentations class, p [0.5],
                params [{}]}; face_part_cutout: {p [0], parts [eyes, nose, mouth],
                jitter [0.03], fill [0]} (see fakescope.train.augment)
    optim:      name adamw | sgd | sam [adamw]; lr [1e-3]; weight_decay [0];
                momentum [0.9] and nesterov [false] (sgd, sam over sgd);
                betas [0.9, 0.999] (adamw, sam over adamw); base sgd | adamw [sgd]
                and rho [0.05] (sam); grad_clip [none]: max global grad norm;
                warmup_steps [0]: optimizer step s (0-based) < warmup_steps uses
                the schedule's rate x (s + 1) / warmup_steps (a linear warm-up on
                top of any schedule; the schedule itself runs as without it).
                Post-norm transformers (e.g. ASRID's clip head) can collapse to a
                constant output when trained at a high rate from the first step
    schedule:   name none | cosine_restarts | onecycle | plateau [none], with
                cosine_restarts: t0 [5] epochs, t_mult [1], eta_min [0];
                onecycle: max_lr [optim.lr], pct_start [0.3], div_factor [25],
                          final_div_factor [1e4], anneal cos | linear [cos];
                plateau (on validation loss): factor [0.1], patience [2],
                          threshold [1e-4], min_lr [0], cooldown [0]
    train:      epochs [10]; max_steps [none]: stop (resumably) after this many
                optimizer steps in all; amp auto | true | false [auto] (CUDA
                only); device auto | cpu | cuda | cuda:N [auto]; log_every [20]
                steps; val_every [1] epochs; checkpoint_every [0] steps between
                mid-epoch last.pt saves (0: at epoch ends only); channels_last
                [false]: NHWC tensors (MesoInception-4 steps ~3x faster on CPU);
                micro_batch [none]: forward and backward each batch in chunks of this
                many samples (clips with data.sequence), their gradients summed into
                the one optimizer step, so a model that does not fit at batch_size
                trains at it with less memory. The step is the full batch's where the
                loss is a mean over samples; BatchNorm statistics and batch-level
                terms (mask loss, contrastive and other training_losses) come from
                each chunk, weighted by its share of the batch;
                bn_momentum [none: the architecture's]: batch-norm running-statistics
                momentum while training, PyTorch convention. MesoNet keeps Keras'
                0.01, whose running statistics take a few hundred steps to settle:
                in a short run on small data, validation would see stale ones;
                select auc | mean_dataset_auc | video_auc [auc]: what picks best.pt,
                the val AUC pooled over all val rows, or the mean of the AUCs of each
                dataset in the val manifest (its `dataset` column), so a small val set
                from another domain weighs as much as a large one, or (data.sequence
                only) the val video AUC of the trained video head. With data.sequence,
                metrics.csv also has val_video_auc, val_video_logloss (DFDC's: the
                mean binary log loss, probabilities clipped to [1e-15, 1 - 1e-15]),
                val_video_acc and val_videos
    output:     the run folder (required)
    seed:       [none] = derived from the config's hash (see `TrainConfig.config_hash`),
                so the same recipe reproduces the same run

Paths (data manifests, model.init, output) may use ``${VAR}`` or
``${VAR:-default}`` environment references; relative paths are relative to the
config file's folder. The recipes in ``configs/`` point at the shared data with
``${FAKESCOPE_SHARED:-../../shared}``, i.e. the `shared` folder beside the
repository unless FAKESCOPE_SHARED says otherwise.

Overrides (``fakescope train cfg.yaml optim.lr=3e-4 data.batch_size=16``) are
``dotted.key=value`` with the value parsed as YAML (``1e-3`` is a float, ``[1, 2]``
a list, ``null`` none); list items are addressed by index
(``augment.transforms.0.p=0.2``). They are applied before validation, so they
are checked like the file and they change the config hash (and so the derived seed).
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..errors import FakescopeError
from ..models.base import MIN_CROP_MARGIN, PreprocessSpec


class ConfigError(FakescopeError):
    code = "bad_config"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- sections


class ModelSection(_Section):
    arch: str
    kwargs: dict[str, Any] = {}
    init: Optional[str] = None

    @field_validator("arch")
    @classmethod
    def _registered(cls, value: str) -> str:
        from ..models import MODELS  # importing the package registers every architecture

        if value not in MODELS:
            raise ValueError(MODELS.unknown_message(value))
        return value


class PreprocessSection(_Section):
    input_size: Optional[int] = Field(None, gt=0)
    mean: Optional[tuple[float, float, float]] = None
    std: Optional[tuple[float, float, float]] = None
    margin: Optional[float] = Field(None, ge=MIN_CROP_MARGIN)
    face_detector: Optional[str] = None
    # "image": a whole-image detector's samples (fakescope.data.images: native-resolution crops)
    subject: Optional[Literal["face", "image"]] = None

    @field_validator("std")
    @classmethod
    def _positive(cls, value):
        if value is not None and min(value) <= 0:
            raise ValueError("every std must be > 0")
        return value


class SplitSource(_Section):
    manifest: str
    split: Optional[str] = None

    @field_validator("split")
    @classmethod
    def _not_test(cls, value):
        if value == "test":
            raise ValueError("'test' is held out for final evaluation; train and select the best epoch on other splits")
        return value


class SynthesisSection(_Section):
    kind: Literal["sbi", "xray", "both"] = "sbi"
    p_fake: float = Field(0.5, gt=0.0, le=1.0)
    landmarks_json: Optional[str] = None
    keep_real_fakes: bool = False


class SynthSource(SplitSource):
    synthesis: Optional[SynthesisSection] = None


class SequenceSection(_Section):
    frames: int = Field(8, ge=1, le=1024)
    sample_by: Literal["picture", "video"] = "video"
    head: str


class DataSection(_Section):
    train: SynthSource
    val: SynthSource
    extra_train: list[SplitSource] = []
    batch_size: int = Field(32, gt=0)
    val_batch_size: Optional[int] = Field(None, gt=0)
    num_workers: int = Field(0, ge=0)
    balanced: bool = False
    sequence: Optional[SequenceSection] = None

    @model_validator(mode="after")
    def _balanced_without_synthesis(self) -> "DataSection":
        if self.balanced and self.train.synthesis is not None:
            raise ConfigError("data.balanced: not with data.train.synthesis (its p_fake sets the class balance)")
        if self.sequence is not None and (self.train.synthesis is not None or self.val.synthesis is not None):
            raise ConfigError("data.sequence: not with synthesis (synthetic fakes are single faces, not videos)")
        return self


class LossSection(_Section):
    mask_weight: float = Field(0.0, ge=0.0)
    mask_target: Literal["mask", "boundary"] = "mask"
    video_weight: float = Field(0.2, ge=0.0, le=1.0)


class TransformSpec(_Section):
    name: str
    p: float = Field(0.5, ge=0.0, le=1.0)
    params: dict[str, Any] = {}


FACE_PARTS = ("eyes", "nose", "mouth")


class FacePartCutoutSpec(_Section):
    p: float = Field(0.0, ge=0.0, le=1.0)
    parts: list[Literal["eyes", "nose", "mouth"]] = Field(default_factory=lambda: list(FACE_PARTS), min_length=1)
    jitter: float = Field(0.03, ge=0.0, le=0.2)
    fill: int = Field(0, ge=0, le=255)


class AugmentSection(_Section):
    transforms: list[TransformSpec] = []
    face_part_cutout: FacePartCutoutSpec = FacePartCutoutSpec()


class OptimSection(_Section):
    name: Literal["adamw", "sgd", "sam"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    base: Literal["sgd", "adamw"] = "sgd"
    rho: float = Field(0.05, gt=0)
    grad_clip: Optional[float] = Field(None, gt=0)
    warmup_steps: int = Field(0, ge=0)

    @field_validator("betas")
    @classmethod
    def _betas(cls, value):
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError("betas must be in [0, 1)")
        return value


class NoSchedule(_Section):
    name: Literal["none"]


class CosineRestartsSchedule(_Section):
    name: Literal["cosine_restarts"]
    t0: int = Field(5, ge=1)  # epochs until the first restart
    t_mult: int = Field(1, ge=1)
    eta_min: float = Field(0.0, ge=0)


class OneCycleSchedule(_Section):
    name: Literal["onecycle"]
    max_lr: Optional[float] = Field(None, gt=0)
    pct_start: float = Field(0.3, gt=0, lt=1)
    div_factor: float = Field(25.0, gt=0)
    final_div_factor: float = Field(1e4, gt=0)
    anneal: Literal["cos", "linear"] = "cos"


class PlateauSchedule(_Section):
    name: Literal["plateau"]
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(2, ge=0)
    threshold: float = Field(1e-4, ge=0)
    min_lr: float = Field(0.0, ge=0)
    cooldown: int = Field(0, ge=0)


Schedule = Annotated[
    Union[NoSchedule, CosineRestartsSchedule, OneCycleSchedule, PlateauSchedule], Field(discriminator="name")
]


class TrainSection(_Section):
    epochs: int = Field(10, ge=1)
    max_steps: Optional[int] = Field(None, ge=1)
    amp: Union[Literal["auto"], bool] = "auto"
    device: str = "auto"
    log_every: int = Field(20, ge=1)
    val_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(0, ge=0)
    channels_last: bool = False
    micro_batch: Optional[int] = Field(None, ge=1)
    bn_momentum: Optional[float] = Field(None, gt=0, le=1)
    select: Literal["auc", "mean_dataset_auc", "video_auc"] = "auc"

    @field_validator("amp", mode="before")
    @classmethod
    def _amp(cls, value):
        if isinstance(value, str) and value.lower() in ("auto", "true", "false"):
            return {"auto": "auto", "true": True, "false": False}[value.lower()]
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f"amp must be auto, true or false, got {value!r}")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value


# Keys that decide how a run is operated, not what it learns: they are left out of
# the config hash, so extending `train.epochs`, moving `output` or changing the
# number of loader workers keeps the derived seed, and a longer run started from
# the same recipe follows the shorter one step for step (which is what makes
# resuming with more epochs exact). Each is a dotted path into the dumped config.
OPERATIONAL_KEYS = (
    "output", "train.epochs", "train.max_steps", "train.log_every", "train.checkpoint_every",
    "train.device", "data.num_workers",
)


class TrainConfig(_Section):
    model: ModelSection
    preprocess: PreprocessSection = PreprocessSection()
    data: DataSection
    augment: AugmentSection = AugmentSection()
    loss: LossSection = LossSection()
    optim: OptimSection = OptimSection()
    schedule: Schedule = NoSchedule(name="none")
    train: TrainSection = TrainSection()
    output: str
    seed: Optional[int] = Field(None, ge=0, lt=2**32)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Optional[Path] = PrivateAttr(default=None)
    _overrides: list[str] = PrivateAttr(default_factory=list)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_by_name(cls, value):
        """`schedule: plateau` is short for `schedule: {name: plateau}` with its defaults."""
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_names(self) -> "TrainConfig":
        """Checks that need other libraries: constructor arguments of the architecture
        and of each albumentations transform. Raised as ConfigError (not ValueError)
        so pydantic passes them through with their own, precise key paths."""
        problems = _check_arch_kwargs(self.model) + _check_transforms(self.augment.transforms)
        problems += _check_sequence(self)
        if self.loss.mask_weight > 0 and self.data.train.synthesis is None:
            problems.append("loss.mask_weight: mask supervision needs data.train.synthesis "
                            "(only synthetic fakes come with masks); set it or mask_weight: 0")
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    # -- paths ---------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def resolve_path(self, value: str, key: str = "path") -> Path:
        """Environment references expanded; relative paths taken from the config's folder."""
        path = Path(expand_env(value, key))
        return Path(os.path.normpath(path if path.is_absolute() else self._base_dir / path))

    @property
    def output_dir(self) -> Path:
        return self.resolve_path(self.output, "output")

    # -- identity ------------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        """The config as plain data with every default filled in (JSON types only)."""
        return self.model_dump(mode="json")

    def config_hash(self) -> str:
        """sha256 of the canonical config: the settings that differ from their defaults,
        minus OPERATIONAL_KEYS, as sorted JSON.

        Leaving defaults out means writing a default explicitly changes nothing, and
        a later fakescope version that adds a setting keeps existing recipes' seeds.
        Paths are hashed as written (before `${VAR}` expansion and resolution), so the
        same recipe gives the same hash in any checkout. Overrides are part of the
        config, so they change the hash.
        """
        data = self.model_dump(mode="json", exclude_defaults=True)
        for dotted in OPERATIONAL_KEYS:
            *parents, last = dotted.split(".")
            node = data
            for part in parents:
                node = node.get(part, {})
            node.pop(last, None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def derived_seed(self) -> int:
        return int(self.config_hash()[:8], 16)

    @property
    def effective_seed(self) -> int:
        """`seed` when given, else derived from the config hash: the same recipe always
        reproduces the same run without anyone having to pick a number."""
        return self.seed if self.seed is not None else self.derived_seed()

    def preprocess_spec(self, base: PreprocessSpec) -> PreprocessSpec:
        overrides = {k: v for k, v in self.preprocess.model_dump().items() if v is not None}
        return PreprocessSpec(**{**base.model_dump(), **overrides})


# ---------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads 1e-3 as a float (YAML 1.1 wants 1.0e-3), since
    PyYAML's strings would slip through untyped places such as transform params."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}{at}") from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a recipe, apply ``a.b=value`` overrides, validate; ConfigError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = _parse_yaml(path.read_text(), str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections (model:, data:, ...)")
    for item in overrides:
        apply_override(data, item)
    config = validate_config(data, where=str(path))
    config._base_dir = path.resolve().parent
    config._source = path.resolve()
    config._overrides = list(overrides)
    for key, value in _path_fields(config):
        expand_env(value, key)  # fail now on an unset variable, not an hour into the run
    return config


def validate_config(data: dict, where: str = "config") -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(format_errors(exc))) from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None


def apply_override(data: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r}: expected dotted.key=value, e.g. optim.lr=3e-4")
    value = _parse_yaml(raw, f"override {item!r}") if raw.strip() else None
    node: Any = data
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {item!r}: {where}: no item {part} in a list of {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth])} is a value, not a section")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, key: str = "path") -> str:
    """``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error."""

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} for a fallback)")

    return _ENV.sub(substitute, value)


def _path_fields(config: TrainConfig) -> list[tuple[str, str]]:
    fields = [("output", config.output), ("data.train.manifest", config.data.train.manifest),
              ("data.val.manifest", config.data.val.manifest)]
    fields += [(f"data.extra_train[{i}].manifest", source.manifest) for i, source in enumerate(config.data.extra_train)]
    for key in ("train", "val"):
        synthesis = getattr(config.data, key).synthesis
        if synthesis is not None and synthesis.landmarks_json:
            fields.append((f"data.{key}.synthesis.landmarks_json", synthesis.landmarks_json))
    if config.model.init:
        fields.append(("model.init", config.model.init))
    return fields


# ---------------------------------------------------------------------------- dynamic checks


def closest(name: str, candidates: Sequence[str], cutoff: float = 0.6) -> Optional[str]:
    """The likeliest intended name: one the typo is part of (cosine -> cosine_restarts), else the most similar."""
    name = str(name)
    containing = [c for c in candidates if name and name.lower() in c.lower()]
    if containing:
        return min(containing, key=len)
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = closest(name, candidates)
    if close:
        return f"did you mean {close}?"
    return f"valid keys: {', '.join(sorted(candidates))}" if candidates else "it takes none"


def _init_parameters(cls) -> Optional[list[str]]:
    """Named constructor parameters, or None when it also takes **kwargs."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _check_arch_kwargs(model: ModelSection) -> list[str]:
    from ..models import MODELS

    known = _init_parameters(MODELS.get(model.arch))
    if known is None:
        return []
    return [f"model.kwargs.{k}: unknown key for {model.arch}; {_suggest(k, known)}" for k in model.kwargs if k not in known]


def _check_sequence(config: "TrainConfig") -> list[str]:
    """data.sequence needs a model with video heads (and names one of them);
    loss.video_weight means nothing without it."""
    from ..models import MODELS

    sequence = config.data.sequence
    if sequence is None:
        problems = []
        if "video_weight" in config.loss.model_fields_set:
            problems.append("loss.video_weight: weighs the clip loss of data.sequence, which is not set")
        if config.train.select == "video_auc":
            problems.append("train.select: video_auc is the val AUC of a video head trained on clips "
                            "(data.sequence), which is not set")
        return problems
    heads = tuple(MODELS.get(config.model.arch).video_heads)
    if not heads:
        return [f"data.sequence: {config.model.arch} has no video heads to train on clips "
                f"(architectures with some: {', '.join(n for n in sorted(MODELS) if MODELS.get(n).video_heads) or 'none'})"]
    if sequence.head not in heads:
        return [f"data.sequence.head: {sequence.head!r} is not a video head of {config.model.arch}; "
                f"{_suggest(sequence.head, list(heads))}"]
    return []


_NOT_AUGMENTATIONS = {"Normalize", "ToFloat", "FromFloat", "ToTensorV2", "ToRGB", "ToGray"}


def albumentations_transforms() -> dict[str, type]:
    import albumentations as A
    from albumentations.core.transforms_interface import BasicTransform

    return {
        name: obj for name, obj in vars(A).items()
        if isinstance(obj, type) and issubclass(obj, BasicTransform) and not name.startswith("_")
    }


def _check_transforms(specs: list[TransformSpec]) -> list[str]:
    if not specs:
        return []
    from .augment import build_transform

    known = albumentations_transforms()
    problems = []
    for i, spec in enumerate(specs):
        where = f"augment.transforms[{i}]"
        if spec.name not in known:
            close = closest(spec.name, list(known))
            hint = f"did you mean {close}?" if close else "see albumentations' list of transforms"
            problems.append(f"{where}.name: {spec.name!r} is not an albumentations transform; {hint}")
            continue
        if spec.name in _NOT_AUGMENTATIONS:
            problems.append(f"{where}.name: {spec.name} is not an augmentation (normalisation and tensors come from preprocess)")
            continue
        if "p" in spec.params:
            problems.append(f"{where}.params.p: give p beside name, not inside params")
            continue
        params = _init_parameters(known[spec.name])
        if params is not None:
            unknown = [k for k in spec.params if k not in params]
            if unknown:
                problems += [f"{where}.params.{k}: unknown key for {spec.name}; {_suggest(k, [n for n in params if n != 'p'])}"
                             for k in unknown]
                continue
        try:
            build_transform(spec)
        except ValidationError as exc:
            problems += [f"{where}.params.{'.'.join(str(x) for x in e['loc']) or spec.name}: {_clean(e['msg'])}"
                         for e in exc.errors()]
        except Exception as exc:  # albumentations raises assorted types for bad values
            problems += [f"{where}.params{'.' + key if key else ''}: {detail}" for key, detail in _transform_errors(exc, spec.name)]
    return problems


def _transform_errors(exc: Exception, name: str) -> list[tuple[str, str]]:
    """albumentations re-raises its pydantic errors as text ("1 validation error for
    InitSchema / field / detail [type=...]"): pick out each field and its detail."""
    lines = str(exc).splitlines()
    if lines and re.match(r"\d+ validation errors? for ", lines[0]):
        found = []
        for field, detail in zip(lines[1::2], lines[2::2]):
            if field.startswith(" ") or not detail.startswith(" "):
                break
            found.append((field.strip(), _clean(re.sub(r"\s*\[type=.*$", "", detail.strip()))))
        if found:
            return found
    return [("", f"{name} rejects them: {lines[0] if lines else type(exc).__name__}")]


# ---------------------------------------------------------------------------- error messages


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _walk(loc: tuple) -> tuple[str, Optional[type]]:
    """A pydantic error location as the user writes the key (``augment.transforms[0].p``),
    plus the section class the last key was looked up in (for did-you-mean)."""
    shown = ""
    current: Any = TrainConfig
    owner: Optional[type] = None
    for item in loc:
        members = [_unwrap(m) for m in _union_members(_unwrap(current))] if current is not None else []
        models = [m for m in members if _is_model(m)]
        if len(models) > 1 and isinstance(item, str):  # a discriminated union: the tag names the member
            tagged = [m for m in models if typing.get_args(m.model_fields["name"].annotation) == (item,)]
            if tagged:
                current = tagged[0]
                continue
        target = models[0] if len(models) == 1 else (members[0] if len(members) == 1 else None)
        if isinstance(item, int):
            shown += f"[{item}]"
            args = typing.get_args(target) if target is not None else ()
            current = args[0] if args else None
            if typing.get_origin(target) is tuple and len(args) > item:
                current = args[item]
            continue
        shown += f".{item}" if shown else str(item)
        if _is_model(target):
            owner = target
            field = target.model_fields.get(item)
            current = field.annotation if field is not None else None
        elif typing.get_origin(target) is dict:
            current = typing.get_args(target)[1]
        else:
            current = None
    return shown, owner


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def format_errors(exc: ValidationError) -> list[str]:
    """One short line per problem: ``<dotted key>: <what is wrong>``."""
    lines = []
    for err in exc.errors():
        where, owner = _walk(tuple(err["loc"]))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            key = str(err["loc"][-1])
            candidates = list(owner.model_fields) if owner is not None else []
            lines.append(f"{where}: unknown key; {_suggest(key, candidates)}")
        elif kind == "missing":
            lines.append(f"{where}: required key missing")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            choices = _choices(ctx.get("expected_tags", "")) or _tags_at(err["loc"])
            if kind == "union_tag_not_found":
                lines.append(f"{_join(where, 'name')}: required key missing (one of {', '.join(choices)})")
            else:
                tag = ctx.get("tag")
                close = closest(str(tag), choices, cutoff=0.5)
                hint = f"did you mean {close}? " if close else ""
                lines.append(f"{_join(where, 'name')}: unknown choice {tag!r}; {hint}(one of {', '.join(choices)})")
        elif kind == "literal_error":
            choices = _choices(ctx.get("expected", ""))
            close = closest(str(err.get("input")), choices, cutoff=0.5)
            hint = f"; did you mean {close}?" if close else ""
            lines.append(f"{where}: {err['msg']}, got {_short(err.get('input'))}{hint}")
        elif kind in ("value_error", "assertion_error"):
            lines.append(f"{where}: {_clean(err['msg'])}")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            lines.append(f"{where}: should be a mapping (key: value lines), got {_short(err.get('input'))}")
        else:
            lines.append(f"{where}: {err['msg']}, got {_short(err.get('input'))}")
    return lines


def _tags_at(loc) -> list[str]:
    return ["none", "cosine_restarts", "onecycle", "plateau"] if loc and loc[0] == "schedule" else []


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
