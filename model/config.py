"""Hyperparameters as dataclasses: the model takes its ModelConfig whole; input dims come from the data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

TASKS = ("binary", "regression", "emotion")


def _known(cls, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names and v is not None}


@dataclass
class ModelConfig:
    """Multilogue-Net dimensions and regularisation (paper defaults)."""

    task: str
    d_text: int
    d_audio: int
    d_visual: int
    d_global: int = 150  # D_g
    d_party: int = 150  # D_p
    d_emotion: int = 100  # D_e
    d_hidden: int = 100  # D_h
    recurrent_dropout: float = 0.1  # inside each cell, on g, q and e
    dropout: float = 0.5  # on the per-modality hidden vectors
    output_dropout: float = 0.65  # on the recurrent outputs e_t
    mask_fusion: bool = True  # False reproduces the seed's attention over padded utterances

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else 2

    @property
    def bidirectional(self) -> bool:
        return self.task != "regression"

    @classmethod
    def for_task(cls, task: str, d_text: int, d_audio: int, d_visual: int, **overrides: Any) -> "ModelConfig":
        """The paper's configuration for `task`; None-valued overrides are ignored."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        dropout = overrides.get("dropout")
        if dropout is None:
            dropout = 0.25 if task == "regression" else 0.5
        defaults = {
            "dropout": dropout,
            # the paper adds 0.15 on the recurrent outputs of the categorical models only
            "output_dropout": dropout if task == "regression" else min(dropout + 0.15, 0.95),
        }
        return cls(task=task, d_text=d_text, d_audio=d_audio, d_visual=d_visual, **{**defaults, **_known(cls, overrides)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        return cls(**_known(cls, values))


@dataclass
class TrainConfig:
    """Optimisation and protocol settings (paper defaults, plus validation-based early stopping)."""

    task: str
    emotion: str | None = None
    epochs: int = 50
    lr: float = 1e-4
    l2: float = 1e-5
    batch_size: int = 128
    valid_ratio: float = 0.1
    patience: int = 10
    seed: int = 0
    device: str = "auto"
    normalize: bool = True
    modality_dropout: float = 0.0  # chance that a dialogue loses each modality in a training batch

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> "TrainConfig":
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        defaults: dict[str, Any] = {"epochs": 100, "l2": 1e-4} if task == "regression" else {"epochs": 50, "l2": 1e-5}
        return cls(task=task, **{**defaults, **_known(cls, overrides)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
