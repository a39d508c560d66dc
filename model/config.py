"""Hyperparameters as dataclasses: the model takes its ModelConfig whole; input dims come from the data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from model.tasks import get_task


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
        return get_task(self.task).n_outputs

    @property
    def bidirectional(self) -> bool:
        return get_task(self.task).bidirectional

    @classmethod
    def for_task(cls, task: str, d_text: int, d_audio: int, d_visual: int, **overrides: Any) -> "ModelConfig":
        """The paper's configuration for `task`; None-valued overrides are ignored."""
        spec = get_task(task)
        dropout = overrides.get("dropout")
        if dropout is None:
            dropout = spec.dropout
        defaults = {
            "dropout": dropout,
            # the paper adds 0.15 on the recurrent outputs of the categorical models only
            "output_dropout": dropout if spec.regression else min(dropout + 0.15, 0.95),
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
    split_seed: int | None = None  # seed of the validation split; None: `seed` (members of an ensemble share one)
    device: str = "auto"
    normalize: bool = True
    modality_dropout: float = 0.0  # chance that a dialogue loses each modality in a training batch
    select: str = "loss"  # model selection on validation: "loss", or "metric" (the task's headline metric)
    class_weights: str = "inverse"  # "inverse" class frequencies (the paper), "sqrt", or "none"
    balance_corpora: bool = False  # merged datasets: repeat smaller corpora's videos (sqrt of the size ratio) in each epoch
    finetune_text: int = 0  # MiniLM's top layers trained with the network (0: frozen sentence vectors); pipeline.training.finetune
    text_lr: float = 1e-4  # their learning rate (no weight decay)
    token_budget: int = 16384  # word pieces the fine-tuned layers run on at once; bigger batches use gradient checkpointing
    text_cache: str | None = None  # the lower layers' token states (None: ~/.cache/multilogue/token-states)
    joint_seeds: list[int] | None = None  # with finetune_text: these seeds' networks train together on one fine-tuned encoder (an ensemble)

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> "TrainConfig":
        spec = get_task(task)
        defaults: dict[str, Any] = {"epochs": spec.epochs, "l2": spec.l2}
        return cls(task=task, **{**defaults, **_known(cls, overrides)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
