"""What a task is, in one place: its targets, head, loss, decoding, metrics and output names.

    task = get_task("emotion-class")
    y = task.targets(labels)                    # (n, 7) dataset labels -> (n,) targets, NaN where unknown
    loss = task.loss(out, y, weights)           # out: the model's (N, C) log-probabilities or (N,) scores
    pred = task.decode(out)                     # class ids, or scores
    task.metrics(truth, pred, sentiment=...)    # {name: value}
    task.outputs(out)                           # (T, C) probabilities, or (T,) scores, as numpy
    task.fields(values, emotion)                # per utterance, what predict reports: {"sentiment": 1.2}, ...

| task          | targets (from the 7 label columns)                 | head            | loss                 | metrics |
|---------------|----------------------------------------------------|-----------------|----------------------|---------|
| regression    | sentiment in [-3, 3]                               | 1, 3 tanh, fwd  | MSE                  | mae, pearson_r, accuracy_binary, accuracy_7 |
| binary        | sentiment >= 0 (the seed's rule)                   | 2, bidirectional| class-weighted NLL   | accuracy, f1_weighted, *_nonzero |
| emotion       | one emotion's intensity > 0 (--emotion)            | 2, bidirectional| class-weighted NLL   | accuracy, weighted_accuracy, f1_weighted |
| emotion-class | neutral + the six: the strongest emotion present,  | 7, bidirectional| class-weighted NLL   | accuracy, f1_weighted, f1_macro, f1_<class> |
|               | neutral when all six are known and absent          |                 |                      | |

What predict reports per utterance: regression {"sentiment"}; binary {"positive_prob"}; emotion
{"emotions": {<emotion>: P(present)}}; emotion-class {"emotion": the most probable class, "emotion_probs":
{class: probability}}. Without a binary model the utterance's label comes from its sentiment score
(sentiment_label: positive, negative, or neutral inside the band |score| < NEUTRAL_BAND); the metric stays the
sign rule (accuracy_binary, >= 0 positive). A task added here is picked up by the CLI's --task choices, the model's head, training,
evaluation, checkpoints and predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from data.schema import EMOTIONS, LABEL_COLUMNS
from model import metrics as M

# torch is imported inside the methods that compute: the CLI builds its parser from TASK_NAMES, and `cli.py
# --help` or a refused option should not pay torch's 1.5 s import.
if TYPE_CHECKING:
    import torch

EMOTION_CLASSES = ("neutral", *EMOTIONS)
# Scores this close to 0 read "neutral": the sign of -0.21 on "congressional district," is noise, not a judgement.
# Half a point of the -3..3 scale, the annotators' smallest step being 1 (CMU-MOSI averages several ratings).
NEUTRAL_BAND = 0.5


def sentiment_label(score: float | None) -> str | None:
    """The label predict reports for a sentiment score: "neutral" when |score| < NEUTRAL_BAND, else "positive" or
    "negative" by its sign; None without a score."""
    if score is None:
        return None
    return "neutral" if abs(score) < NEUTRAL_BAND else "positive" if score > 0 else "negative"


def sentiment_targets(labels: np.ndarray, emotion: str | None = None) -> np.ndarray:
    return np.asarray(labels[:, 0], dtype=np.float32)


def binary_targets(labels: np.ndarray, emotion: str | None = None) -> np.ndarray:
    raw = labels[:, 0]
    return np.where(np.isnan(raw), np.nan, (raw >= 0).astype(np.float32)).astype(np.float32)


def emotion_targets(labels: np.ndarray, emotion: str | None = None) -> np.ndarray:
    raw = labels[:, LABEL_COLUMNS.index(emotion)]
    return np.where(np.isnan(raw), np.nan, (raw > 0).astype(np.float32)).astype(np.float32)


def emotion_class_targets(labels: np.ndarray, emotion: str | None = None) -> np.ndarray:
    """(n, 7) labels -> (n,) class ids into EMOTION_CLASSES: the strongest emotion present (ties: the first in
    EMOTIONS), neutral (0) when all six are known and absent, NaN when none is present and some are unknown."""
    six = np.asarray(labels[:, 1:], dtype=np.float32)
    known = ~np.isnan(six)
    filled = np.where(known, six, -np.inf)
    strongest = filled.max(axis=1)
    out = np.full(len(six), np.nan, dtype=np.float32)
    some = strongest > 0
    out[some] = 1 + filled[some].argmax(axis=1)
    out[known.all(axis=1) & ~some] = 0
    return out


@dataclass(frozen=True)
class Task:
    name: str
    n_outputs: int
    bidirectional: bool  # the paper's categorical heads run each cell forward and backward
    classes: tuple[str, ...]  # output names: class names, or ("sentiment",)
    primary: tuple[str, bool]  # headline metric and whether higher is better
    targets_fn: Callable[[np.ndarray, str | None], np.ndarray]
    metrics_fn: Callable[..., dict[str, float]]
    fields_fn: Callable[[np.ndarray, str | None], list[dict]] | None = None
    per_emotion: bool = False  # needs --emotion
    epochs: int = 50  # paper defaults
    l2: float = 1e-5
    dropout: float = 0.5

    @property
    def regression(self) -> bool:
        return self.n_outputs == 1

    def targets(self, labels: np.ndarray, emotion: str | None = None) -> np.ndarray:
        """(n, 7) labels -> (n,) float32 targets (class ids or scores); NaN where unknown."""
        return self.targets_fn(labels, emotion)

    def head(self, logits: torch.Tensor) -> torch.Tensor:
        """The classifier's raw output (..., n_outputs) -> 3 tanh scores (...,), or log-probabilities."""
        import torch
        import torch.nn.functional as F

        return 3.0 * torch.tanh(logits.squeeze(-1)) if self.regression else F.log_softmax(logits, dim=-1)

    def loss(self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Mean loss over N labelled utterances: out (N,) scores or (N, C) log-probabilities, y (N,)."""
        import torch.nn.functional as F

        return F.mse_loss(out, y) if self.regression else F.nll_loss(out, y.long(), weight=weights)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """Predictions: the scores themselves, or the most probable class."""
        return out if self.regression else out.argmax(-1)

    def outputs(self, out: torch.Tensor) -> np.ndarray:
        """Per utterance, for predict and ensembles: (T,) scores, or (T, C) class probabilities."""
        return (out if self.regression else out.exp()).double().cpu().numpy()

    def fields(self, values: np.ndarray, emotion: str | None = None) -> list[dict]:
        """Per utterance, what predict reports, from outputs() of one dialogue ((T,) or (T, C))."""
        return self.fields_fn(values, emotion)

    def metrics(self, truth: np.ndarray, pred: np.ndarray, sentiment: np.ndarray | None = None) -> dict[str, float]:
        if not self.regression:
            truth, pred = truth.astype(int), pred.astype(int)
        return self.metrics_fn(truth, pred, sentiment)

    def class_weights(self, y: torch.Tensor) -> torch.Tensor | None:
        """Inverse class frequencies n / (C n_c) of the training targets (0 for a class never seen); None for
        regression."""
        if self.regression:
            return None
        import torch

        y = y[~torch.isnan(y)].long()
        counts = torch.bincount(y, minlength=self.n_outputs).float()
        weights = len(y) / (self.n_outputs * counts.clamp_min(1))
        weights[counts == 0] = 0.0
        return weights


def _binary_metrics(truth: np.ndarray, pred: np.ndarray, sentiment: np.ndarray | None) -> dict[str, float]:
    return M.binary_metrics(sentiment if sentiment is not None else np.where(truth > 0, 1.0, -1.0), pred)


def _round(x: float) -> float:
    return round(float(x), 4)


def _class_fields(values: np.ndarray, emotion: str | None) -> list[dict]:
    return [{"emotion": EMOTION_CLASSES[int(np.argmax(p))], "emotion_probs": {c: _round(v) for c, v in zip(EMOTION_CLASSES, p)}}
            for p in values]


TASKS: dict[str, Task] = {
    "binary": Task("binary", 2, True, ("negative", "positive"), ("accuracy", True), binary_targets, _binary_metrics,
                   lambda v, e: [{"positive_prob": _round(p[1])} for p in v]),
    "regression": Task("regression", 1, False, ("sentiment",), ("mae", False), sentiment_targets,
                       lambda t, p, s: M.regression_metrics(t, p), lambda v, e: [{"sentiment": _round(x)} for x in v],
                       epochs=100, l2=1e-4, dropout=0.25),
    "emotion": Task("emotion", 2, True, ("absent", "present"), ("weighted_accuracy", True), emotion_targets,
                    lambda t, p, s: M.emotion_metrics(t, p), lambda v, e: [{"emotions": {e: _round(p[1])}} for p in v], per_emotion=True),
    "emotion-class": Task("emotion-class", len(EMOTION_CLASSES), True, EMOTION_CLASSES, ("f1_weighted", True), emotion_class_targets,
                          lambda t, p, s: M.multiclass_metrics(t, p, EMOTION_CLASSES), _class_fields),
}
TASK_NAMES = tuple(TASKS)


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None
