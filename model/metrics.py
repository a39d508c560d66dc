"""Task metrics. Accuracies and F1 scores are percentages.

binary      accuracy, f1_weighted over negative (< 0) vs non-negative (>= 0) sentiment (the seed's rule);
            accuracy_nonzero, f1_nonzero: the same on utterances whose sentiment is not 0, where the
            truth is sentiment > 0 (the convention of the CMU-MOSI/MOSEI literature).
regression  mae; pearson_r; accuracy_binary: sign agreement (>= 0) of prediction and truth;
            accuracy_7: agreement after rounding both, clipped to [-3, 3], to the 7 integer classes.
emotion     accuracy; weighted_accuracy: the mean of the two class recalls; f1_weighted.
emotion-class (7-way: neutral + six) accuracy; f1_weighted; f1_macro: the unweighted mean of per-class F1 over
            the classes in truth or predictions; f1_<class> for each of those classes.
"""

from __future__ import annotations

import numpy as np

def f1_per_class(truth: np.ndarray, pred: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """F1 in [0, 1] of each class in `classes` (0 where a class has no true and no predicted member)."""
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return np.asarray(scores, dtype=np.float64)


def f1_weighted(truth: np.ndarray, pred: np.ndarray) -> float:
    """Support-weighted mean of per-class F1, in percent; classes are the values present in truth."""
    classes, support = np.unique(truth, return_counts=True)
    if len(classes) == 0:
        return float("nan")
    return float(100 * np.average(f1_per_class(truth, pred, classes), weights=support))


def _accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(100 * np.mean(truth == pred)) if truth.size else float("nan")


def binary_metrics(sentiment: np.ndarray, pred_class: np.ndarray) -> dict[str, float]:
    """sentiment: (n,) true scores (or 0/1 classes mapped to -1/+1); pred_class: (n,) 0/1."""
    truth = (sentiment >= 0).astype(int)
    nz = sentiment != 0
    return {
        "accuracy": _accuracy(truth, pred_class),
        "f1_weighted": f1_weighted(truth, pred_class),
        "accuracy_nonzero": _accuracy(truth[nz], pred_class[nz]),
        "f1_nonzero": f1_weighted(truth[nz], pred_class[nz]) if nz.any() else float("nan"),
    }


def regression_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """truth, pred: (n,) sentiment scores in [-3, 3]."""
    if truth.size == 0:
        return {k: float("nan") for k in ("mae", "pearson_r", "accuracy_binary", "accuracy_7")}
    r = float(np.corrcoef(truth, pred)[0, 1]) if truth.size > 1 and truth.std() > 0 and pred.std() > 0 else float("nan")
    return {
        "mae": float(np.mean(np.abs(truth - pred))),
        "pearson_r": r,
        "accuracy_binary": _accuracy(truth >= 0, pred >= 0),
        "accuracy_7": _accuracy(np.clip(np.round(truth), -3, 3), np.clip(np.round(pred), -3, 3)),
    }


def emotion_metrics(truth: np.ndarray, pred_class: np.ndarray) -> dict[str, float]:
    """truth, pred_class: (n,) 0/1 presence of the emotion."""
    recalls = [np.mean(pred_class[truth == c] == c) for c in (0, 1) if np.any(truth == c)]
    return {
        "accuracy": _accuracy(truth, pred_class),
        "weighted_accuracy": float(100 * np.mean(recalls)) if recalls else float("nan"),
        "f1_weighted": f1_weighted(truth, pred_class),
    }


def multiclass_metrics(truth: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """truth, pred: (n,) class ids into `names`. Per-class F1 for the classes seen in truth or predictions."""
    seen = np.union1d(np.unique(truth), np.unique(pred)).astype(int)
    per_class = f1_per_class(truth, pred, seen)
    out = {
        "accuracy": _accuracy(truth, pred),
        "f1_weighted": f1_weighted(truth, pred),
        "f1_macro": float(100 * per_class.mean()) if len(seen) else float("nan"),
    }
    out.update({f"f1_{names[c]}": float(100 * f) for c, f in zip(seen, per_class)})
    return out

