"""The dataset format: its keys, label columns and modalities, and the one validation every file passes.

A dataset is a dict with exactly these keys; per-video values are keyed by video id:

    ID                list[str]                      video ids (a video is one conversation)
    speakers          {vid: list[str]}               one speaker label per utterance
    labels            {vid: (n_utt, 7) float32}      LABEL_COLUMNS; NaN where unknown
    text_feat         {vid: (n_utt, d_text) float32}
    audio_feat        {vid: (n_utt, d_audio) float32}
    visual_feat       {vid: (n_utt, d_visual) float32}
    sentence_in_text  {vid: list[str]}
    present           {vid: (n_utt, 3) bool}         whether each utterance has text, audio, visual features
    train, test       list[str]                      video ids
    meta              dict: format_version, features (per modality: name, params, dim),
                      timings ({vid: [[start, end], ...]} seconds, optional), provenance, and optionally
                      groups ({vid: group}: videos that must stay on one side of the validation split, such as
                      augmented copies of one recording or one speaker's clips)

Absent features (an audio-only clip's visual modality, an utterance without a face, an utterance with no
words, a corpus of transcripts) are stored as zero rows with `present` False; models mask them out. A
modality of width 0 is absent everywhere. Format 1 files had no `present`: they validate with every modality
present (where its width is not 0).

This module imports nothing of the project but core/: data.dataset (save/load) and the importers
(data.seed, pipeline.importers.csd, ...) all build on it, and none of them on each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import DatasetError
from core.options import MAX_DIM  # noqa: F401  (the format's width limit, re-exported)

FORMAT_VERSION = 2  # 2: per-utterance presence of each modality
LABEL_COLUMNS = ("sentiment", "happiness", "sadness", "anger", "surprise", "disgust", "fear")
EMOTIONS = LABEL_COLUMNS[1:]
MODALITIES = ("text", "audio", "visual")
FEATURE_KEYS = tuple(f"{m}_feat" for m in MODALITIES)
PER_VIDEO_KEYS = ("speakers", "labels", *FEATURE_KEYS, "sentence_in_text")
KEYS = ("ID", *PER_VIDEO_KEYS, "train", "test", "meta")
PRESENT = "present"  # optional on load (format 1 had none); always written


SENTIMENT_LIMIT = 3 + 1e-4  # float32 scores written as exactly +-3 may land a hair outside


def label_problem(labels: np.ndarray) -> str | None:
    """What is wrong with (n, 7) labels, or None: inf, sentiment outside [-3, 3], a negative emotion.

    NaN means unknown and is fine. One rule for every importer and the dataset validation.
    """
    labels = np.asarray(labels, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        if np.isinf(labels).any():
            return "has inf (use NaN for unknown)"
        if (np.abs(labels[:, 0]) > SENTIMENT_LIMIT).any():
            return f"sentiment outside [-3, 3] ({np.nanmax(np.abs(labels[:, 0])):.3g})"
        if (labels[:, 1:] < 0).any():
            return "has a negative emotion intensity (emotions are >= 0)"
    return None


def empty_dataset(features: dict[str, dict] | None = None, provenance: dict | None = None) -> dict:
    """A dataset with no videos. `features` maps modality -> {"name", "params", "dim"}."""
    return {
        "ID": [],
        **{key: {} for key in PER_VIDEO_KEYS},
        PRESENT: {},
        "train": [],
        "test": [],
        "meta": {
            "format_version": FORMAT_VERSION,
            "features": dict(features or {}),
            "timings": {},
            "provenance": dict(provenance or {}),
        },
    }


def feature_dims(ds: dict) -> dict[str, int]:
    """Feature width per modality, e.g. {"text": 300, "audio": 384, "visual": 35}."""
    dims = {}
    for m, key in zip(MODALITIES, FEATURE_KEYS):
        spec = ds["meta"].get("features", {}).get(m)
        if ds["ID"]:
            dims[m] = int(ds[key][ds["ID"][0]].shape[1])
        elif spec:
            dims[m] = int(spec["dim"])
        else:
            dims[m] = 0
    return dims


def dim_differences(expected: dict[str, int], given: dict[str, int]) -> list[str]:
    """The one feature-width comparison: ["audio 384 vs 88", ...] for each modality present in both whose widths
    differ (expected first). model.checkpoint.check_dims and extractors.build_from_spec word their errors on it."""
    return [f"{m} {int(expected[m])} vs {int(given[m])}" for m in MODALITIES if m in expected and m in given
            and int(expected[m]) != int(given[m])]


def _fail(source: Any, what: str, fix: str) -> None:
    raise DatasetError(f"{source}: {what}; {fix}")


def validate_dataset(ds: Any, source: Any = "dataset") -> dict:
    """Check every key, shape and value; return `ds` with arrays cast to float32.

    Raises DatasetError naming the file, the video and the field that is wrong.
    """
    if not isinstance(ds, dict):
        _fail(source, f"holds a {type(ds).__name__}, not a dataset dict", "pass a file written by `cli.py extract` or `cli.py import`")
    missing = [k for k in KEYS if k not in ds]
    if missing:
        _fail(source, f"missing key(s) {', '.join(map(repr, missing))}", f"a dataset needs all of {', '.join(KEYS)}")
    if not isinstance(ds["meta"], dict):
        _fail(source, "'meta' is not a dict", "re-create the file with `cli.py extract` or `cli.py import`")
    for key in ("ID", "train", "test"):
        if not isinstance(ds[key], (list, tuple)) or not all(isinstance(v, str) for v in ds[key]):
            what = type(ds[key]).__name__ if not isinstance(ds[key], (list, tuple)) else "a list with non-string ids"
            _fail(source, f"'{key}' is {what}, not a list of video ids (strings)", "store video ids as a list of strings")
    for key in ("features", "timings", "provenance", "groups"):
        if key in ds["meta"] and not isinstance(ds["meta"][key], dict):
            _fail(source, f"meta '{key}' is a {type(ds['meta'][key]).__name__}, not a dict", "re-create the file with `cli.py extract` or `cli.py import`")
    for m, spec in ds["meta"].get("features", {}).items():
        if not isinstance(spec, dict):
            _fail(source, f"meta 'features' entry {m!r} is a {type(spec).__name__}, not a dict", "each feature spec is {name, params, dim}")
    groups = ds["meta"].get("groups", {})
    if not all(isinstance(k, str) and isinstance(g, str) for k, g in groups.items()):
        _fail(source, "meta 'groups' must map video ids to group names (strings)", "store {video id: group} with strings")
    ids = list(ds["ID"])
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})[:3]
        _fail(source, f"duplicate video ids in 'ID': {dup}", "each video id must appear once")
    for key in PER_VIDEO_KEYS:
        if not isinstance(ds[key], dict):
            _fail(source, f"'{key}' is a {type(ds[key]).__name__}, not a dict keyed by video id", "see the dataset format in README.md")
        absent = [v for v in ids if v not in ds[key]]
        if absent:
            _fail(source, f"video {absent[0]!r} is in 'ID' but has no '{key}'", f"add '{key}' for every video or drop the video from 'ID'")

    dims: dict[str, int] = {}
    for vid in ids:
        n = None
        for key in FEATURE_KEYS:
            arr = ds[key][vid]
            try:
                arr = np.asarray(arr, dtype=np.float32)
            except (TypeError, ValueError):
                _fail(source, f"video {vid!r}: '{key}' is not a numeric array", "store features as float arrays (n_utt, dim)")
            if arr.ndim != 2:
                _fail(source, f"video {vid!r}: '{key}' has shape {arr.shape}, expected (n_utt, dim)", "store one feature row per utterance")
            if arr.shape[0] == 0:
                _fail(source, f"video {vid!r}: '{key}' has no utterances", "drop videos without utterances")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                _fail(source, f"video {vid!r}: '{key}' has {arr.shape[0]} utterances but 'text_feat' has {n}", "every modality needs one row per utterance")
            if key in dims and arr.shape[1] != dims[key]:
                _fail(source, f"video {vid!r}: '{key}' has width {arr.shape[1]} but other videos have {dims[key]}", "extract every video with the same extractors")
            dims[key] = arr.shape[1]
            if not np.isfinite(arr).all():
                bad = int((~np.isfinite(arr)).any(axis=1).nonzero()[0][0])
                _fail(source, f"video {vid!r}: '{key}' has NaN/inf (first at utterance {bad})", "replace non-finite features, e.g. with np.nan_to_num")
            ds[key][vid] = arr
        try:
            labels = np.asarray(ds["labels"][vid], dtype=np.float32)
        except (TypeError, ValueError):
            _fail(source, f"video {vid!r}: 'labels' are not numbers", "store labels as floats (NaN where unknown)")
        if labels.shape != (n, len(LABEL_COLUMNS)):
            _fail(source, f"video {vid!r}: 'labels' has shape {labels.shape}, expected ({n}, {len(LABEL_COLUMNS)})", f"one row per utterance with columns {', '.join(LABEL_COLUMNS)} (NaN where unknown)")
        problem = label_problem(labels)
        if problem:
            _fail(source, f"video {vid!r}: 'labels' {problem}", "sentiment is in [-3, 3], emotions >= 0, NaN where unknown")
        ds["labels"][vid] = labels
        for key in ("speakers", "sentence_in_text"):
            seq = ds[key][vid]
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
                _fail(source, f"video {vid!r}: '{key}' is not a list", "store one entry per utterance")
            if len(seq) != n:
                _fail(source, f"video {vid!r}: '{key}' has {len(seq)} entries but the features have {n} utterances", "store one entry per utterance")
            ds[key][vid] = [str(s) for s in seq]

    _validate_present(ds, ids, dims, source)
    known = set(ids)
    for split in ("train", "test"):
        unknown = [v for v in ds[split] if v not in known]
        if unknown:
            _fail(source, f"'{split}' lists video {unknown[0]!r}, which is not in 'ID'", f"list only ids from 'ID' in '{split}'")
    both = set(ds["train"]) & set(ds["test"])
    if both:
        _fail(source, f"video {sorted(both)[0]!r} is in both 'train' and 'test'", "put each video in one split")
    ds["ID"] = ids
    ds["train"], ds["test"] = list(ds["train"]), list(ds["test"])
    return ds


def _validate_present(ds: dict, ids: list[str], dims: dict[str, int], source: Any) -> None:
    """Check (or, for format 1 data, create) the presence masks; a modality of width 0 is never present."""
    given = ds.get(PRESENT)
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        _fail(source, f"'{PRESENT}' is a {type(given).__name__}, not a dict keyed by video id", "see the dataset format in README.md")
    width = np.array([dims.get(key, 0) > 0 for key in FEATURE_KEYS])
    out = {}
    for vid in ids:
        n = len(ds["speakers"][vid])
        if vid not in given:
            out[vid] = np.broadcast_to(width, (n, len(MODALITIES))).copy()
            continue
        try:
            arr = np.asarray(given[vid])
        except (TypeError, ValueError):
            arr = np.zeros(0)
        if arr.shape != (n, len(MODALITIES)) or arr.dtype.kind not in "bui":
            _fail(source, f"video {vid!r}: '{PRESENT}' has shape {arr.shape} ({arr.dtype}), expected ({n}, 3) bool",
                  "one row per utterance: whether it has text, audio and visual features")
        out[vid] = arr.astype(bool) & width
    ds[PRESENT] = out
