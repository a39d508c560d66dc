"""Tasks (model.tasks): targets from the 7 label columns, heads, metrics against hand-computed values, and the
7-way emotion task end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import cli
from model.metrics import multiclass_metrics
from model.tasks import EMOTION_CLASSES, get_task
from tests.synthetic import synthetic_dataset

NAN = np.nan


def test_emotion_class_targets():
    labels = np.array([
        # sentiment, happiness, sadness, anger, surprise, disgust, fear
        [0.5, 0, 0, 0, 0, 0, 0],          # all six known and absent -> neutral
        [0.5, 2, 0, 0, 0, 0, 0],          # happiness
        [-1, 0, 1, 3, 0, 0, 0],           # the strongest: anger
        [-1, 0, 2, 2, 0, 0, 0],           # a tie: the first in order, sadness
        [-1, NAN, NAN, NAN, NAN, NAN, 1],  # fear present, others unknown -> fear
        [-1, 0, 0, NAN, 0, 0, 0],         # none present but anger unknown -> unknown
        [NAN] * 7,                         # unknown
    ], dtype=np.float32)
    y = get_task("emotion-class").targets(labels)
    expected = [0, 1, 3, 2, 6, NAN, NAN]
    np.testing.assert_array_equal(y, np.array(expected, dtype=np.float32))
    assert [EMOTION_CLASSES[int(c)] for c in y[:5]] == ["neutral", "happiness", "anger", "sadness", "fear"]


def test_multiclass_metrics_by_hand():
    names = ("a", "b", "c")
    truth = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    m = multiclass_metrics(truth, pred, names)
    # per class: a: tp 2 fp 0 fn 1 -> 4/5; b: tp 1 fp 1 fn 1 -> 2/4; c: tp 1 fp 1 fn 0 -> 2/3
    assert m["accuracy"] == pytest.approx(100 * 4 / 6)
    assert m["f1_a"] == pytest.approx(80.0) and m["f1_b"] == pytest.approx(50.0) and m["f1_c"] == pytest.approx(200 / 3)
    assert m["f1_macro"] == pytest.approx((80 + 50 + 200 / 3) / 3)
    assert m["f1_weighted"] == pytest.approx((3 * 80 + 2 * 50 + 1 * 200 / 3) / 6)
    # a class neither true nor predicted has no F1 entry and does not enter the macro mean
    m = multiclass_metrics(np.array([0, 2]), np.array([0, 2]), names)
    assert "f1_b" not in m and m["f1_macro"] == pytest.approx(100.0)


def test_heads_losses_and_class_weights():
    cls = get_task("emotion-class")
    logits = torch.randn(4, 7)
    out = cls.head(logits)
    assert torch.allclose(out.exp().sum(-1), torch.ones(4))
    assert cls.decode(out).tolist() == logits.argmax(-1).tolist()
    w = cls.class_weights(torch.tensor([0.0, 0.0, 1.0, float("nan"), 1.0, 1.0, 3.0]))
    # 6 known targets, 7 classes: n / (C n_c)
    assert w.tolist() == pytest.approx([6 / 14, 6 / 21, 0, 6 / 7, 0, 0, 0])
    reg = get_task("regression")
    assert reg.head(torch.tensor([[100.0], [-100.0]])).tolist() == pytest.approx([3.0, -3.0])
    assert reg.class_weights(torch.zeros(3)) is None


def test_emotion_class_end_to_end(tmp_path, capsys):
    """Train the 7-way classifier on a small corpus whose emotion is readable from the text features, evaluate
    it, and check the metrics it writes."""
    ds = synthetic_dataset(n_videos=40, seed=3)
    rng = np.random.default_rng(3)
    for v in ds["ID"]:
        n = len(ds["speakers"][v])
        cls = rng.integers(0, 7, n)
        labels = ds["labels"][v]
        labels[:, 1:] = 0
        for i, c in enumerate(cls):
            if c:
                labels[i, c] = 2.0
        ds["text_feat"][v][:, :7] = np.eye(7)[cls] * 3  # the class is in the text
    from data.dataset import save_dataset

    data = save_dataset(ds, tmp_path / "emo.pkl")
    out = tmp_path / "run"
    assert cli.main(["train", "--task", "emotion-class", "--data", str(data), "--out", str(out), "--epochs", "12",
                     "--batch-size", "4", "--lr", "3e-3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert {"accuracy", "f1_weighted", "f1_macro"} <= set(metrics)
    assert any(k.startswith("f1_") and k[3:] in EMOTION_CLASSES for k in metrics)
    assert metrics["accuracy"] > 60  # chance is ~14%
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["label_names"] == list(EMOTION_CLASSES) and ckpt["model_config"]["task"] == "emotion-class"
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(out), "--data", str(data), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["run"]
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])


def test_the_sentiment_label_has_a_neutral_band():
    """Predict's label from a regression score: neutral when |score| < 0.5 (so -0.21 on "congressional district," is not
    "negative"), else the sign; the score itself is kept, and the metric stays the sign rule."""
    from pathlib import Path

    from extractors.base import Segment
    from model.tasks import NEUTRAL_BAND, sentiment_label
    from pipeline.prediction.predict import LoadedModel, Predictor

    scores = np.array([-0.21, 0.49, -0.5, 0.5, 2.0, -2.0, 0.0])
    segments = [Segment(float(i), i + 1.0, "A", "congressional district,") for i in range(len(scores))]
    regression = LoadedModel(Path("sentiment/checkpoint.pt"), "regression", None, None, {})
    rows = Predictor._merge(object.__new__(Predictor), segments, {"regression": (regression, scores)}, None)
    assert [r["label"] for r in rows] == ["neutral", "neutral", "negative", "positive", "positive", "negative", "neutral"]
    assert [r["sentiment"] for r in rows] == pytest.approx(scores)
    assert NEUTRAL_BAND == 0.5 and sentiment_label(None) is None
    metrics = get_task("regression").metrics(np.array([-0.2, 0.2]), np.array([-0.1, 0.3]))
    assert metrics["accuracy_binary"] == 100.0  # binary accuracy: the sign, not the band
