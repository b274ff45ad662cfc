"""Model and training configuration: two presets (`thesis`, `tiny`) and their resolution from CLI flags."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolbox.errors import UserError
from trainer.data.device_decode import check_decode
from trainer.engine.engine import DECAY_GROUPS
from trainer.engine.metrics import REPORT_TO
from trainer.model.losses import MLM_MEANS
from trainer.masking.loss_weights import LossWeights
from trainer.masking.masker import MASK_REPLACEMENT
from trainer.masking.spec import MaskSpec, parse_mask_spec
from trainer.run_dir import RunDir
from trainer.data.transforms import ALBEF_CROP_SCALE, AUGMENTS

THESIS_VISION = "vit_base_patch32_224.augreg_in21k"
DEFAULT_SEED = 42


@dataclass
class ModelConfig:
    """Architecture of PosMaskModel; saved beside its weights (trainer.run_dir: config.json)."""

    vision_name: str = THESIS_VISION  # timm architecture (the pretrained tag is ignored when building)
    vision_overrides: dict[str, Any] = field(default_factory=dict)  # extra timm kwargs (tiny ViT sizes)
    vision_stem: str = "patch"  # "patch" (timm's) or "conv" (strided convolutions; random or a vision-init file)
    image_size: int = 224
    hidden_size: int = 768
    num_heads: int = 12
    mlp_ratio: float = 4.0
    text_layers: int = 6
    fusion_layers: int = 6
    vocab_size: int = 30522
    max_text_len: int = 30
    embed_dim: int = 256  # ITC projection size
    text_pool: str = "cls"  # ITC text feature: the [CLS] token ("cls", ALBEF) or the mean of the text tokens ("mean")
    itm_pool: str = "cls"  # ITM head input: the fused [CLS] ("cls", ALBEF) or the mean of the fused tokens ("mean")
    temp_init: float = 0.07
    dropout: float = 0.1
    pad_id: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a dict, ignoring unknown keys (forward compatibility)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> None:
        """Write as JSON atomically."""
        from toolbox.atomic import atomic_write_json

        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        """Read from JSON."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _default_mask() -> MaskSpec:
    return parse_mask_spec("DET", 0.7)


@dataclass
class TrainConfig:
    """Everything a run needs; the resolved copy is the run record (trainer.run_dir: run_config.json) that
    resumption and reports read: the mask is stored parsed, never as the text the user typed."""

    model: ModelConfig
    preset: str = "thesis"
    mask: MaskSpec = field(default_factory=_default_mask)
    mask_probs: tuple[float, float] = MASK_REPLACEMENT  # [MASK], random token; the rest unchanged
    loss_weights: LossWeights = field(default_factory=LossWeights)  # MLM/ITC/ITM weights, fixed or ramped
    shards: str = "data/shards/scenes"
    run: str = ""  # "" = default_run()
    vision_weights: str = THESIS_VISION  # local file | hub name in the local HF cache | "random"
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64  # per process
    lr: float = 1e-4
    warmup_lr: float = 1e-5
    min_lr: float = 1e-5
    warmup_steps: int = 500  # capped at 10% of the run's steps (the thesis preset: see trainer/README.md, "Warm-up")
    warmup_epochs: float | None = None  # instead of warmup_steps: warm up over this many epochs (not capped)
    weight_decay: float = 0.02
    grad_clip: float = 5.0
    seed: int = DEFAULT_SEED
    workers: int = 4
    shuffle_buffer: int = 2000
    crop_scale: tuple[float, float] = (0.5, 1.0)  # ALBEF's fine-tuning crop; its pre-training crop is --augment albef
    augment: str = "crop"  # "crop": RandomResizedCrop alone; "albef": + flip + RandAugment (trainer.data.transforms)
    decode: str = "cpu"  # "gpu": the device decodes and crops the JPEGs, workers only read tars (data.device_decode)
    decay_groups: str = "posmask"  # parameters without weight decay: "posmask" or "albef" (engine.engine.decays)
    mlm_mean: str = "global"  # MLM loss mean over all ranks' masked tokens ("global") or per rank ("rank", ALBEF)
    hard_negative_warmup: int = 0  # steps over which the share of hard ITM negatives ramps 0 -> 1 (0: all hard)
    hard_negative_share: float | None = None  # instead: ramp over this share of the run's steps (scales with it)
    log_every: int = 10
    ckpt_every: int = 1000
    albef: bool = False
    momentum: float = 0.995
    alpha: float = 0.4
    queue_size: int = 65536
    compile: bool = False
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    peak_tflops: float | None = None  # for MFU; guessed from the GPU name when None
    report_to: str = "none"  # "tensorboard": event files beside metrics.jsonl too (trainer.engine.metrics)
    verify_shards: bool = False  # check every shard's sha256 against the manifest before training
    allow_damaged_shards: bool = False  # train on shards whose size or sha256 differs from the manifest's

    def __post_init__(self) -> None:
        self.run = self.run or self.default_run()
        for name, valid in (("augment", AUGMENTS), ("decay_groups", DECAY_GROUPS), ("mlm_mean", MLM_MEANS),
                            ("report_to", REPORT_TO)):
            if getattr(self, name) not in valid:
                raise UserError(f"{name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        check_decode(self.decode, self.augment)
        if self.hard_negative_share is not None and not 0.0 <= self.hard_negative_share <= 1.0:
            raise UserError(f"hard_negative_share {self.hard_negative_share}: a share of the run in [0, 1]")

    def hard_negative_steps(self, total: int) -> int:
        """The steps over which hard ITM negatives ramp in, for a run of `total` steps (0: hard from step 0)."""
        if self.hard_negative_share is not None:
            return int(round(self.hard_negative_share * total))
        return self.hard_negative_warmup

    def default_run(self) -> str:
        """`runs/PRESET-MASK[-lw-WEIGHTS][-albef]`, e.g. runs/thesis-DET-0.7, runs/tiny-none,
        runs/tiny-NOUN-0.7-w, runs/tiny-random-0.15-lw-mlm0.2to1, runs/thesis-random-0.15-albef."""
        parts = (self.preset, self.mask.label, self.loss_weights.suffix, "albef" if self.albef else "")
        return "runs/" + "-".join(p for p in parts if p)

    @property
    def extended(self) -> bool:
        """True for a mask or loss schedule beyond the thesis (per-class ratios, whole words, budgets, fallback,
        curricula, loss weights)."""
        m = self.mask
        return bool(m.ratios or m.whole_word or m.budget is not None or m.fallback != "none" or m.stages
                    or not self.loss_weights.is_default)

    @property
    def label(self) -> str:
        """What was masked, as reports name the method: `NOUN 0.7`, `random 0.15`, `none`, `ALBEF (random 0.15)`;
        the mask's own label for the extensions (`NOUN-0.7-w`, `DET-b0.15`, `cur-DET>NOUN-0.7`,
        `random-0.15 lw-mlm0.2to1`)."""
        if self.extended:
            text = " ".join(p for p in (self.mask.report_label, self.loss_weights.suffix) if p)
        elif self.mask.mlm:
            ratio = f"{self.mask.ratio:g}"
            text = f"{self.mask.name} {ratio if '.' in ratio else ratio + '.0'}"
        else:
            text = self.mask.name
        return f"ALBEF ({text})" if self.albef else text

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        identity = {"mask": self.mask.to_dict(), "preset": self.preset, "batch_size": self.batch_size,
                    "albef": self.albef, "mask_probs": list(self.mask_probs), "seed": self.seed,
                    "model": asdict(self.model)}
        # named only when not the default, so that runs from before these options still resume
        identity.update({k: v for k, v in (("decay_groups", self.decay_groups), ("mlm_mean", self.mlm_mean))
                         if v != getattr(TrainConfig, k)})
        if not self.loss_weights.is_default:
            identity["loss_weights"] = self.loss_weights.to_dict()
        return identity

    def save(self, path: str | Path) -> None:
        """Write as JSON atomically (what `posmask pretrain --config` reads)."""
        from toolbox.atomic import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read a config written by `save` (or a run record); a one-line UserError when it is not one."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}: not a readable run config ({err})") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (the mask and the loss weights as their own records)."""
        return {**asdict(self), "mask": self.mask.to_dict(), "loss_weights": self.loss_weights.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of to_dict; also reads records written before the mask was stored parsed (`pos`, `ratio`)."""
        data = dict(data)
        model = ModelConfig.from_dict(data.pop("model"))
        if "mask" in data:
            data["mask"] = MaskSpec.from_dict(data["mask"])
        elif "pos" in data:
            pos = str(data["pos"])
            data["mask"] = parse_mask_spec(pos, None if pos.lower() == "none" else data.get("ratio"))
        if "loss_weights" in data:
            data["loss_weights"] = LossWeights.from_dict(data["loss_weights"])
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("mask_probs", "crop_scale"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(model=model, **kwargs)


def read_run_config(run_dir: str | Path) -> TrainConfig | None:
    """The run record of a run folder, or None when it has none (or an unreadable one)."""
    try:
        return TrainConfig.load(RunDir(run_dir).run_config)
    except UserError:
        return None


TINY_MODEL = ModelConfig(
    vision_name="vit_tiny_patch16_224",
    vision_overrides={"patch_size": 8, "embed_dim": 128, "depth": 2, "num_heads": 4},
    vision_stem="conv",
    text_pool="mean",
    itm_pool="mean",
    image_size=64,
    max_text_len=40,  # scenes captions: 99% fit in 42 wordpieces, 30 cut the long four-shape ones
    hidden_size=128,
    num_heads=4,
    text_layers=2,
    fusion_layers=2,
    dropout=0.0,
)

PRESETS: dict[str, dict[str, Any]] = {
    # The reference setting of the study (DESIGN.md): ViT-B/32 224 px from ImageNet-21k.
    "thesis": {"model": ModelConfig(), "vision_weights": THESIS_VISION, "epochs": 10, "batch_size": 64,
               "workers": 6, "log_every": 50, "ckpt_every": 2000},
    # Laptop CPU: small ViT at 64 px, 2+2 layers, width 128, random init (no pretrained tiny ViT exists);
    # mild crops (0.8-1), since small synthetic scenes lose the captioned objects to the thesis preset's 0.5-1 crops.
    # Hard ITM negatives are ramped in over the first half of the run (1000 of the 3 epochs' ~1,900 steps, and
    # 200 of a 400-step study run): from scratch, a tiny model never leaves the "always no match" plateau when
    # the negatives are hard from step 0, and a fixed 1,000 steps would keep short runs below 0.4 hardness.
    "tiny": {"model": TINY_MODEL, "vision_weights": "random", "epochs": 3, "batch_size": 32, "lr": 1e-3,
             "warmup_lr": 1e-5, "min_lr": 1e-5, "warmup_steps": 50, "hard_negative_share": 0.5, "workers": 1,
             "shuffle_buffer": 500, "crop_scale": (0.8, 1.0), "log_every": 10, "ckpt_every": 200, "queue_size": 4096},
}


def preset_config(name: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a preset name plus overrides (None values are ignored)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    values["model"] = dataclasses.replace(values["model"])  # a fresh copy
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("augment") == "albef" and overrides.get("crop_scale") is None:
        values["crop_scale"] = ALBEF_CROP_SCALE  # ALBEF's pre-training crop goes with its flip and RandAugment
    return TrainConfig(preset=name, **values)
