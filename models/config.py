"""ModelConfig: every hyperparameter of the alpha model, explicit, with its default."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from core.errors import ConfigError
from models.dataset import Split

LABEL_KINDS = ("classification", "regression")


@dataclass(frozen=True)
class ModelConfig:
    features: tuple = ()  # empty = models.features.DEFAULT_FEATURES
    seq_len: int = 30  # window length in trading days
    horizon: int = 10  # label horizon in trading days
    label: str = (
        "classification"  # "classification": P(beat benchmark); "regression": the seed's z-scored excess return
    )
    stride: int = 1  # take every stride-th training window per ticker
    valid_stride: int = 0  # every valid_stride-th validation window; 0: the same as stride (walk-forward
    # selection folds train at a stride of 2 but validate on every window, so their losses compare)
    hidden: int = 32
    layers: int = 1
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    epochs: int = 15
    patience: int = 3  # early stopping on the validation loss
    seed: int = 0
    threads: int = 1  # torch threads; 1 is as fast on 2 cores and 20x faster when they are busy;
    # predictions differ at ~1e-6 between counts, so it is recorded
    split: Split = field(default_factory=Split)

    def __post_init__(self):
        checks = {
            "seq_len": self.seq_len >= 1,
            "horizon": self.horizon >= 1,
            "stride": self.stride >= 1,
            "valid_stride": self.valid_stride >= 0,
            "hidden": self.hidden >= 1,
            "layers": self.layers >= 1,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 1,
            "threads": self.threads >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"model parameter {name}={getattr(self, name)!r} is out of range; "
                    "see models/config.py for valid values"
                )
        if self.label not in LABEL_KINDS:
            raise ConfigError(f"model parameter label={self.label!r}: use one of {LABEL_KINDS}")
        object.__setattr__(self, "features", tuple(self.features))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["features"] = list(self.features)
        if d["valid_stride"] == 0:  # the old rule (validation at `stride`): configs without the field
            del d["valid_stride"]  # keep their fingerprints, so models stored before it stay valid
        return d

    @property
    def strides(self) -> tuple[int, int]:
        """(training, validation) stride: every n-th window per ticker each period keeps."""
        return self.stride, self.valid_stride or self.stride

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model parameter(s) {sorted(unknown)}; valid ones: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("split"), dict):
            split_known = {f.name for f in dataclasses.fields(Split)}
            bad = set(d["split"]) - split_known
            if bad:
                raise ConfigError(f"unknown split key(s) {sorted(bad)}; valid ones: {sorted(split_known)}")
            d["split"] = Split(**d["split"])
        return cls(**d)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """16 hex digits of sha256 over every hyperparameter (the split included): equal configs,
        equal fingerprints; any change, a new one."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
