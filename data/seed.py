"""The seed's 9-tuple pickle format, converted to the dataset dict (load_dataset reads such files as they are;
`cli.py import seed` is pipeline.importers.seed).

The seed stored `(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual,
videoSentence, trainVid, testVid)`, the first seven dicts keyed by video id. Labels are either float
sentiment scores in [-3, 3] or integer classes (0/1); speakers are any tokens ('M', 'F', one-hot rows).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from data.schema import FORMAT_VERSION, LABEL_COLUMNS, validate_dataset
from core.errors import DatasetError

SEED_FIELDS = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual", "videoSentence", "trainVid", "testVid")


def _speaker_token(tok: Any) -> str:
    """'M' -> 'M'; a one-hot row [0, 1] -> 'P1'."""
    if isinstance(tok, (str, bytes)):
        return tok.decode("utf-8", "replace") if isinstance(tok, bytes) else tok
    arr = np.asarray(tok)
    if arr.ndim == 1 and arr.size > 1:
        return f"P{int(arr.argmax())}"
    return str(arr.item() if arr.size == 1 else tok)


def _label_rows(raw: Any, vid: str, column: str, source: Any) -> tuple[np.ndarray, str]:
    """Seed labels of one video -> ((n, 7) float32, kind) with kind 'score' or 'class'."""
    arr = np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DatasetError(f"{source}: video {vid!r}: labels have shape {arr.shape}, expected one label per utterance; import multi-column labels with `cli.py import csd`")
    out = np.full((arr.shape[0], len(LABEL_COLUMNS)), np.nan, dtype=np.float32)
    col = LABEL_COLUMNS.index(column)
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_):
        values = arr.astype(np.int64)
        if not np.isin(values, (0, 1)).all():
            raise DatasetError(f"{source}: video {vid!r}: integer labels {sorted(set(values.tolist()))[:5]} are not 0/1 classes; store float sentiment scores instead")
        # class 1 is non-negative sentiment (the seed's rule) or presence of the emotion
        out[:, col] = np.where(values == 1, 1.0, -1.0) if column == "sentiment" else values.astype(np.float32)
        return out, "class"
    out[:, col] = arr.astype(np.float32)
    return out, "score"


def from_seed_tuple(obj: Sequence, source: Any = "seed pickle", column: str = "sentiment") -> dict:
    """Convert the seed's 9-tuple to a validated dataset dict.

    `column` names the label column the seed's single label goes to (sentiment, or an emotion for the
    seed's per-emotion pickles).
    """
    if column not in LABEL_COLUMNS:
        raise DatasetError(f"{source}: unknown label column {column!r}; choose one of {', '.join(LABEL_COLUMNS)}")
    if len(obj) != len(SEED_FIELDS):
        raise DatasetError(f"{source}: a tuple of {len(obj)} items is not the seed's 9-tuple ({', '.join(SEED_FIELDS)})")
    vid_utts, speakers, labels, text, audio, visual, sentences, train, test = obj
    for name, part in zip(SEED_FIELDS[:7], obj[:7]):
        if not isinstance(part, dict):
            raise DatasetError(f"{source}: seed field {name} is a {type(part).__name__}, expected a dict keyed by video id")
    ids = [str(v) for v in list(train) + list(test)]
    ids += [str(v) for v in vid_utts if str(v) not in set(ids)]
    by_str = {str(k): k for k in vid_utts}
    kinds = set()
    ds: dict = {"ID": [], "speakers": {}, "labels": {}, "text_feat": {}, "audio_feat": {}, "visual_feat": {}, "sentence_in_text": {}}
    for vid in ids:
        key = by_str.get(vid, vid)
        for name, part in zip(SEED_FIELDS[1:7], obj[1:7]):
            if key not in part:
                raise DatasetError(f"{source}: video {vid!r} has no entry in {name}; every video needs all seven per-video fields")
        ds["ID"].append(vid)
        ds["speakers"][vid] = [_speaker_token(t) for t in speakers[key]]
        ds["labels"][vid], kind = _label_rows(labels[key], vid, column, source)
        kinds.add(kind)
        ds["text_feat"][vid] = np.asarray(text[key], dtype=np.float32)
        ds["audio_feat"][vid] = np.asarray(audio[key], dtype=np.float32)
        ds["visual_feat"][vid] = np.asarray(visual[key], dtype=np.float32)
        ds["sentence_in_text"][vid] = [str(s) for s in sentences[key]]
    ds["train"] = [str(v) for v in train]
    ds["test"] = [str(v) for v in test]
    dims = {m: int(ds[f"{m}_feat"][ids[0]].shape[1]) if ids and np.ndim(ds[f"{m}_feat"][ids[0]]) == 2 else 0 for m in ("text", "audio", "visual")}
    ds["meta"] = {
        "format_version": FORMAT_VERSION,
        "features": {m: {"name": "seed", "params": {}, "dim": d} for m, d in dims.items()},
        "timings": {},
        "utterance_ids": {vid: [str(u) for u in vid_utts[by_str.get(vid, vid)]] for vid in ids},
        "provenance": {"source": str(source), "importer": "seed", "label_column": column, "label_kind": "+".join(sorted(kinds))},
    }
    return validate_dataset(ds, source)

