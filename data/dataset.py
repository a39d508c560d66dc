"""Dataset files: safe save and load (our dict, or the seed's 9-tuple imported on the fly), and helpers over a
loaded dataset (presence of each modality, split sizes).

The format itself (keys, label columns, modalities) and its validation live in data.schema; the names are
re-exported here, where most code imports them from.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from core.fileio import atomic_write_bytes, input_file, safe_load_pickle
from data.seed import from_seed_tuple
from data.schema import (  # noqa: F401  (re-exported)
    EMOTIONS, FEATURE_KEYS, FORMAT_VERSION, KEYS, LABEL_COLUMNS, MAX_DIM, MODALITIES, PER_VIDEO_KEYS, PRESENT, SENTIMENT_LIMIT,
    empty_dataset, feature_dims, label_problem, validate_dataset,
)


def presence(ds: dict, vid: str) -> np.ndarray:
    """(n_utt, 3) bool presence of text, audio, visual for one video; for a dict that has not been through
    validation (no masks yet), every modality of non-zero width is present."""
    given = ds.get(PRESENT, {}).get(vid)
    if given is not None:
        return np.asarray(given, dtype=bool)
    width = [np.shape(ds[key][vid])[1] > 0 for key in FEATURE_KEYS]
    return np.broadcast_to(np.array(width), (len(ds["speakers"][vid]), len(MODALITIES))).copy()


def presence_counts(ds: dict, videos: list[str] | None = None) -> dict[str, int]:
    """Utterances with each modality present, e.g. {"text": 120, "audio": 120, "visual": 87}."""
    videos = ds["ID"] if videos is None else videos
    total = sum((presence(ds, v).sum(axis=0) for v in videos), np.zeros(len(MODALITIES), dtype=np.int64))
    return {m: int(c) for m, c in zip(MODALITIES, total)}


def save_dataset(ds: dict, path: str | Path) -> Path:
    """Validate `ds` and write it atomically as a pickle (protocol 4). Returns the path."""
    path = Path(path)
    validate_dataset(ds, path)
    ds["meta"]["format_version"] = FORMAT_VERSION  # validation added the presence masks of format 2
    atomic_write_bytes(path, pickle.dumps(ds, protocol=4))
    return path


def load_dataset(path: str | Path) -> dict:
    """Load a dataset file: our dict, or the seed's 9-tuple pickle (imported on the fly).

    Only builtins and numpy arrays are unpickled; anything else raises DatasetError.
    """
    path = input_file(path, error=DatasetError, fix="pass a dataset from `cli.py extract` or `cli.py import`",
                      folder_fix="pass the dataset .pkl file (folders of clips go to `cli.py extract`)")
    obj = safe_load_pickle(path)
    if isinstance(obj, (tuple, list)):
        return from_seed_tuple(obj, source=path)
    return validate_dataset(obj, path)


def split_counts(ds: dict) -> dict[str, tuple[int, int]]:
    """{"train": (videos, utterances), "test": (...)}."""
    out = {}
    for split in ("train", "test"):
        vids = ds[split]
        out[split] = (len(vids), int(sum(len(ds["speakers"][v]) for v in vids)))
    return out

