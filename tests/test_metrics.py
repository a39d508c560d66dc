"""Every metric against values computed by hand on small cases (model.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from model.metrics import binary_metrics, emotion_metrics, f1_weighted, regression_metrics


def test_f1_weighted_by_hand():
    truth = np.array([1, 1, 1, 0])
    pred = np.array([1, 0, 1, 1])
    # class 1: tp 2, fp 1, fn 1 -> 4/6; class 0: tp 0, fp 1, fn 1 -> 0; weights 3 and 1
    assert f1_weighted(truth, pred) == pytest.approx(100 * (3 * 4 / 6 + 1 * 0) / 4)
    assert np.isnan(f1_weighted(np.array([], int), np.array([], int)))


def test_binary_metrics_by_hand():
    sentiment = np.array([2.0, 0.0, -1.0, -0.4, 1.2, 0.0])  # truth >= 0: 1 1 0 0 1 1
    pred = np.array([1, 0, 0, 1, 1, 1])
    m = binary_metrics(sentiment, pred)
    assert m["accuracy"] == pytest.approx(100 * 4 / 6)
    # weighted F1: class 1 (4): tp 3 fp 1 fn 1 -> 0.75; class 0 (2): tp 1 fp 1 fn 1 -> 0.5
    assert m["f1_weighted"] == pytest.approx(100 * (4 * 0.75 + 2 * 0.5) / 6)
    # non-zero: drop the two zeros -> truth 1 0 0 1, pred 1 0 1 1
    assert m["accuracy_nonzero"] == pytest.approx(75.0)
    # class 1 (2): tp 2 fp 1 fn 0 -> 0.8; class 0 (2): tp 1 fp 0 fn 1 -> 2/3
    assert m["f1_nonzero"] == pytest.approx(100 * (0.8 + 2 / 3) / 2)


def test_regression_metrics_by_hand():
    truth = np.array([-3.0, -1.2, 0.0, 0.4, 2.6])
    pred = np.array([-2.4, 0.3, -0.6, 0.6, 3.4])
    m = regression_metrics(truth, pred)
    assert m["mae"] == pytest.approx(np.mean([0.6, 1.5, 0.6, 0.2, 0.8]))
    tc, pc = truth - truth.mean(), pred - pred.mean()
    assert m["pearson_r"] == pytest.approx((tc @ pc) / np.sqrt((tc @ tc) * (pc @ pc)))
    # signs (>= 0): truth F F T T T, pred F T F T T -> 3 of 5
    assert m["accuracy_binary"] == pytest.approx(60.0)
    # rounded and clipped: truth -3 -1 0 0 3; pred -2 0 -1 1 3 -> only the last agrees
    assert m["accuracy_7"] == pytest.approx(20.0)
    flat = regression_metrics(truth, np.zeros(5))
    assert np.isnan(flat["pearson_r"])  # a constant prediction has no correlation


def test_emotion_metrics_by_hand():
    truth = np.array([1, 1, 0, 0, 0, 0])
    pred = np.array([1, 0, 0, 0, 0, 1])
    m = emotion_metrics(truth, pred)
    assert m["accuracy"] == pytest.approx(100 * 4 / 6)
    assert m["weighted_accuracy"] == pytest.approx(100 * (1 / 2 + 3 / 4) / 2)  # mean of the two recalls
    # class 0 (4): tp 3 fp 1 fn 1 -> 0.75; class 1 (2): tp 1 fp 1 fn 1 -> 0.5
    assert m["f1_weighted"] == pytest.approx(100 * (4 * 0.75 + 2 * 0.5) / 6)
    only_absent = emotion_metrics(np.zeros(3, int), np.array([0, 1, 0]))
    assert only_absent["weighted_accuracy"] == pytest.approx(100 * 2 / 3)  # one class in truth: its recall
