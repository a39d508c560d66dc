"""Text corpora: a CSV of utterances (no media) -> a dataset whose only modality is text.

    ds = text_dataset("meld.csv", build_extractor("text", "minilm"))
    import_text("meld.csv", "meld.pkl", text="minilm")          # the same, written atomically

The CSV (UTF-8, header row; other columns are ignored):

    video, speaker, text   required; the rows of one video are its utterances, in order (they need not be
                           adjacent); an empty speaker keeps the video's previous speaker ("A" at first)
    start, end             optional utterance times in seconds (kept in meta)
    sentiment              optional, -3..3; happiness, sadness, anger, surprise, disgust, fear: optional, >= 0;
                           an empty cell means unknown
    split                  optional, train or test, one value per video; videos without one are split by
                           hash of (seed, video id) with `test_ratio`

Every row is checked before any feature is computed; a bad row (no text, a label that is not a number or out
of range, a video given both splits, end before start) raises UserError naming the file, the line and the
fix, and nothing is written. Text features come from a text extractor of the registry, run over all
utterances in chunks; each chunk's features are cached by (extractor spec, texts), so an interrupted import
of a large corpus resumes where it stopped. Audio and visual are absent: width 0 (or the widths a checkpoint
needs, for `evaluate`), `present` False.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from data.dataset import LABEL_COLUMNS, PRESENT, empty_dataset, save_dataset
from core.errors import UserError
from core.fileio import atomic_write_bytes, check_writable, refuse_overwrite
from core.options import RATIO
from core.progress import Progress
from data.splits import SPLITS, split_videos

log = logging.getLogger(__name__)

REQUIRED = ("video", "speaker", "text")
DEFAULT_SPEAKER = "A"
CHUNK = 256  # utterances per feature-cache entry
DEFAULT_CACHE = Path.home() / ".cache" / "multilogue" / "text-features"


@dataclass
class TextCorpus:
    """A parsed text CSV: per video (in order of first appearance), its rows."""

    path: Path
    utterances: dict[str, list[dict]] = field(default_factory=dict)  # vid -> [{"line", "speaker", "text", "start", "end", "labels"}]
    splits: dict[str, str] = field(default_factory=dict)
    timed: bool = False
    has_split: bool = False

    @property
    def rows(self) -> int:
        return sum(len(u) for u in self.utterances.values())


def _bad(path: Path, line: int, problem: str, fix: str) -> UserError:
    return UserError(f"{path}: line {line}: {problem}; {fix}")


def _number(cell: str, column: str, path: Path, line: int) -> float | None:
    cell = cell.strip()
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        raise _bad(path, line, f"{column} = {cell!r} is not a number", "leave the cell empty if unknown") from None
    if not math.isfinite(value):
        raise _bad(path, line, f"{column} = {cell!r} is not a finite number", "leave the cell empty if unknown")
    return value


def read_text_csv(path: str | Path) -> TextCorpus:
    """Parse and check a text CSV (layout in the module docstring). Raises UserError on the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass a CSV with header video,speaker,text")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start}); re-save it as UTF-8") from e
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(f"{path}: the header lacks {', '.join(missing)} (got {','.join(header) or 'nothing'}); "
                        "the first row must name the columns video,speaker,text[,start,end][,sentiment,...][,split]")
    if ("start" in header) != ("end" in header):
        raise UserError(f"{path}: give both 'start' and 'end' columns, or neither")
    at = {c: i for i, c in enumerate(header)}
    corpus = TextCorpus(path, timed="start" in at, has_split="split" in at)
    last_speaker: dict[str, str] = {}
    for line, row in enumerate(reader, 2):
        if not any(c.strip() for c in row):
            continue
        row = row + [""] * (len(header) - len(row))
        vid = row[at["video"]].strip()
        if not vid:
            raise _bad(path, line, "no video id", "every row names its video (conversation) in the 'video' column")
        words = " ".join(row[at["text"]].split())
        if not words:
            raise _bad(path, line, f"video {vid!r} has a row with no text", "give the utterance's words or delete the row")
        speaker = row[at["speaker"]].strip() or last_speaker.get(vid, DEFAULT_SPEAKER)
        last_speaker[vid] = speaker
        start = end = None
        if corpus.timed:
            start, end = (_number(row[at[c]], c, path, line) for c in ("start", "end"))
            if (start is None) != (end is None) or (start is not None and (start < 0 or end <= start)):
                raise _bad(path, line, f"start {row[at['start']]!r} and end {row[at['end']]!r}", "give both, in seconds, with end after start >= 0 (or leave both empty)")
        labels = {}
        for c in LABEL_COLUMNS:
            if c not in at:
                continue
            value = _number(row[at[c]], c, path, line)
            if value is None:
                continue
            if c == "sentiment" and abs(value) > 3:
                raise _bad(path, line, f"sentiment {value:g} is outside -3..3", "rescale sentiment to -3 (negative) .. +3 (positive)")
            if c != "sentiment" and value < 0:
                raise _bad(path, line, f"{c} {value:g} is negative", "emotion intensities are >= 0 (0 = absent), empty if unknown")
            labels[c] = value
        if corpus.has_split and row[at["split"]].strip():
            split = row[at["split"]].strip().lower()
            if split not in SPLITS:
                raise _bad(path, line, f"split {row[at['split']].strip()!r}", "write train or test (or leave it empty)")
            if corpus.splits.setdefault(vid, split) != split:
                raise _bad(path, line, f"video {vid!r} is in {split} here but in {corpus.splits[vid]} on an earlier line",
                           "give each video one split")
        corpus.utterances.setdefault(vid, []).append({"line": line, "speaker": speaker, "text": words, "start": start, "end": end, "labels": labels})
    if not corpus.utterances:
        raise UserError(f"{path}: no utterances (only a header); add one row per utterance")
    return corpus


def encode_texts(texts: list[str], extractor: Any, cache_dir: str | Path | None = None, progress: Progress | None = None) -> np.ndarray:
    """(n, dim) float32 text features of `texts` from a text extractor (NaN rows where it finds nothing).

    Runs in chunks of CHUNK utterances; each chunk is cached under `cache_dir` (default
    ~/.cache/multilogue/text-features) by the extractor's spec and the chunk's texts, so a rerun, or one after
    an interruption, only computes what is missing.
    """
    from extractors.base import Segment, spec_of

    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    spec = json.dumps(spec_of(extractor), sort_keys=True, default=str)
    out = np.empty((len(texts), int(extractor.dim)), dtype=np.float32)
    chunks = range(0, len(texts), CHUNK)
    for k, lo in enumerate(chunks):
        part = texts[lo : lo + CHUNK]
        key = hashlib.sha256((spec + "\0" + "\0".join(part)).encode()).hexdigest()
        file = cache / key[:2] / f"{key}.npy"
        rows = _read_rows(file, (len(part), int(extractor.dim)))
        if rows is None:
            rows = np.asarray(extractor(None, [Segment(0.0, 1.0, DEFAULT_SPEAKER, t) for t in part]), dtype=np.float32)
            try:
                buf = io.BytesIO()
                np.save(buf, rows)
                atomic_write_bytes(file, buf.getvalue())
            except (OSError, UserError) as e:  # the features are computed; a lost cache entry only costs a rerun
                log.warning("%s: could not write the text feature cache (%s)", file, getattr(e, "strerror", None) or e)
        out[lo : lo + len(part)] = rows
        if progress is not None:
            progress(k + 1, len(chunks))
    return out


def _read_rows(file: Path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        rows = np.load(file, allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as e:  # an unreadable entry is recomputed, never trusted
        log.warning("%s: unreadable cache entry (%s); recomputing", file, e)
        return None
    return rows if rows.shape == shape and rows.dtype == np.float32 else None


def text_dataset(corpus: TextCorpus | str | Path, extractor: Any, *, dims: dict[str, int] | None = None, test_ratio: float = 0.2,
                 seed: int = 0, all_test: bool = False, cache_dir: str | Path | None = None, progress: Progress | None = None) -> dict:
    """The dataset of a text CSV: text features from `extractor`, audio and visual absent.

    dims: widths for the absent audio/visual features (default 0; `evaluate` passes a checkpoint's).
    Split: the CSV's split column, the rest by hash of (seed, video id) with test_ratio; `all_test` puts
    every video without a split value in test (evaluating data the model never saw).
    """
    from extractors.base import spec_of

    corpus = corpus if isinstance(corpus, TextCorpus) else read_text_csv(corpus)
    dims = {"audio": 0, "visual": 0, **(dims or {})}
    vids = list(corpus.utterances)
    texts = [u["text"] for v in vids for u in corpus.utterances[v]]
    feats = encode_texts(texts, extractor, cache_dir, progress)
    specs = {"text": spec_of(extractor), **{m: {"name": "none", "params": {}, "dim": int(dims[m])} for m in ("audio", "visual")}}
    provenance = {"tool": "cli.py import text", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "file": str(corpus.path.resolve()), "rows": corpus.rows,
                  "split": "split column" + (", others by test_ratio" if not all_test else ", others test") if corpus.has_split else
                           ("all test" if all_test else "test_ratio"),
                  "test_ratio": float(test_ratio), "seed": int(seed)}
    ds = empty_dataset(features=specs, provenance=provenance)
    at = 0
    for vid in vids:
        utts = corpus.utterances[vid]
        n = len(utts)
        rows = feats[at : at + n]
        at += n
        text_present = ~np.isnan(rows).all(axis=1)
        ds["ID"].append(vid)
        ds["speakers"][vid] = [u["speaker"] for u in utts]
        ds["sentence_in_text"][vid] = [u["text"] for u in utts]
        ds["text_feat"][vid] = np.where(np.isfinite(rows), rows, 0.0).astype(np.float32)
        for m in ("audio", "visual"):
            ds[f"{m}_feat"][vid] = np.zeros((n, dims[m]), dtype=np.float32)
        ds[PRESENT][vid] = np.stack([text_present, np.zeros(n, bool), np.zeros(n, bool)], axis=1)
        labels = np.full((n, len(LABEL_COLUMNS)), np.nan, dtype=np.float32)
        for i, u in enumerate(utts):
            for c, v in u["labels"].items():
                labels[i, LABEL_COLUMNS.index(c)] = v
        ds["labels"][vid] = labels
        if corpus.timed and all(u["start"] is not None for u in utts):
            ds["meta"]["timings"][vid] = [[u["start"], u["end"]] for u in utts]
    no_text = sum(int((~ds[PRESENT][v][:, 0]).sum()) for v in vids)
    if no_text:
        log.warning("%s: %d utterance(s) have no %s features (no known word); their text counts as absent", corpus.path, no_text, specs["text"]["name"])
    if all_test:
        ds["test"] = [v for v in vids if corpus.splits.get(v, "test") == "test"]
        ds["train"] = [v for v in vids if v not in set(ds["test"])]
    else:
        ds["train"], ds["test"] = split_videos(vids, test_ratio, seed, corpus.splits)
    return ds


def import_text(path: str | Path, out: str | Path, *, text: str = "glove", text_params: dict | None = None, test_ratio: float = 0.2,
                seed: int = 0, cache_dir: str | Path | None = None, progress: Progress | None = None) -> dict:
    """`cli.py import text`: read and check the CSV, compute text features with the registry's `text`
    extractor, write the dataset to `out` atomically. Returns the dataset."""
    from extractors import build_extractor

    path, out = Path(path), Path(out)
    if out.is_dir():
        raise UserError(f"-o {out}: is a folder; pass the dataset file to write, e.g. {out / 'dataset.pkl'}")
    check_writable(out, "-o")
    refuse_overwrite(out, [path], "-o")
    RATIO.check(test_ratio, "--test-ratio")
    corpus = read_text_csv(path)  # every row is checked before any work
    extractor = build_extractor("text", text, **(text_params or {}))
    ds = text_dataset(corpus, extractor, test_ratio=test_ratio, seed=seed, cache_dir=cache_dir, progress=progress)
    save_dataset(ds, out)
    return ds
