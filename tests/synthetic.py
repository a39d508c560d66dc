"""Small synthetic datasets with a learnable signal, for fast training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.dataset import empty_dataset, save_dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOSI_PKL = SHARED_DATA / "mosi" / "mosi_dev.pkl"


def synthetic_dataset(n_videos: int = 30, dims=(20, 12, 6), parties: int = 2, seed: int = 0, test_ratio: float = 0.2) -> dict:
    """Dialogues whose sentiment is a linear function of the text features; emotions random."""
    rng = np.random.default_rng(seed)
    ds = empty_dataset({m: {"name": "synthetic", "params": {"seed": seed}, "dim": d} for m, d in zip(("text", "audio", "visual"), dims)})
    w = rng.normal(size=dims[0])
    for i in range(n_videos):
        vid = f"video_{i:03d}"
        n = int(rng.integers(1, 9))
        text = rng.normal(size=(n, dims[0])).astype(np.float32)
        labels = np.zeros((n, 7), np.float32)
        labels[:, 0] = np.clip(text @ w / 2, -3, 3)
        labels[:, 1:] = np.abs(rng.normal(size=(n, 6))) * (rng.random((n, 6)) > 0.5)
        ds["ID"].append(vid)
        ds["speakers"][vid] = [f"S{j % parties}" for j in range(n)]
        ds["labels"][vid] = labels
        ds["text_feat"][vid] = text
        ds["audio_feat"][vid] = rng.normal(size=(n, dims[1])).astype(np.float32)
        ds["visual_feat"][vid] = rng.normal(size=(n, dims[2])).astype(np.float32)
        ds["sentence_in_text"][vid] = [f"utterance {j}" for j in range(n)]
    n_test = max(1, int(round(test_ratio * n_videos)))
    ds["train"], ds["test"] = ds["ID"][:-n_test], ds["ID"][-n_test:]
    return ds


def write_synthetic(path: Path, **kwargs) -> Path:
    return save_dataset(synthetic_dataset(**kwargs), path)
