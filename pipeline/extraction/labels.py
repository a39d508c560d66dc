"""A folder's `labels.csv`: per-utterance labels and each video's split (applied by data.splits.split_videos).

labels.csv (UTF-8, header row; columns other than these are ignored):

    video       video id: the clip's path relative to the folder, without suffix (`s1/talk`); the file
                name with its suffix (`s1/talk.mp4`) is accepted too
    utterance   0-based index of the utterance in time order          } one of these two, or neither:
    start, end  the utterance's span in seconds; the utterance that   } a row with neither labels
                overlaps it most (IoU >= 0.5) gets the labels         } every utterance of the video
    sentiment, happiness, sadness, anger, surprise, disgust, fear    optional; empty = unknown
    split       optional: train or test (per video)

labels.csv overrides label values that a transcript CSV gives for the same utterance. Unlabelled
utterances keep NaN.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.dataset import LABEL_COLUMNS
from data.splits import SPLITS
from core.errors import ExtractionError, UserError
from extractors.base import Segment
from extractors.transcripts import parse_number

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
MIN_IOU = 0.5


@dataclass
class LabelRow:
    row: int  # line number in labels.csv, for messages
    utterance: int | None
    start: float | None
    end: float | None
    values: dict[str, float]


@dataclass
class LabelTable:
    """Parsed labels.csv: rows per video id and explicit splits."""

    path: Path | None = None
    rows: dict[str, list[LabelRow]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)


def _number(cell: str, what: str, where: str) -> float | None:
    return parse_number(cell, what, where, error=UserError)


def read_labels(folder: str | Path, video_ids: dict[str, str] | None = None) -> LabelTable:
    """Parse `folder/labels.csv` if it exists (else an empty table).

    video_ids maps accepted spellings (`talk`, `talk.mp4`) to video ids; rows naming unknown videos are
    logged and ignored. Raises UserError naming the file, row and fix on malformed content.
    """
    path = Path(folder) / LABELS_FILE
    table = LabelTable()
    if not path.is_file():
        return table
    table.path = path
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (offset {e.start}); re-save it as UTF-8") from e
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from e
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "video" not in header:
        raise UserError(f"{path}: needs a 'video' column (header: {','.join(header) or 'empty'}); see the label format in README.md")
    at = {c: i for i, c in enumerate(header)}
    if ("start" in at) != ("end" in at):
        raise UserError(f"{path}: give both 'start' and 'end' columns, or neither")
    unknown: set[str] = set()
    for line, row in enumerate(reader, 2):
        if not any(c.strip() for c in row):
            continue
        row = row + [""] * (len(header) - len(row))
        where = f"{path}: row {line}"
        name = row[at["video"]].strip().replace("\\", "/")
        vid = video_ids.get(name) if video_ids is not None else name
        if vid is None:
            unknown.add(name)
            continue
        utt = _number(row[at["utterance"]], "utterance", where) if "utterance" in at else None
        if utt is not None and (utt < 0 or utt != int(utt)):
            raise UserError(f"{where}: utterance {utt} is not a 0-based index")
        start = _number(row[at["start"]], "start", where) if "start" in at else None
        end = _number(row[at["end"]], "end", where) if "end" in at else None
        if (start is None) != (end is None) or (start is not None and end <= start):
            raise UserError(f"{where}: needs both start and end, with end after start")
        values = {}
        for c in LABEL_COLUMNS:
            if c in at:
                v = _number(row[at[c]], c, where)
                if v is None:
                    continue
                if c == "sentiment" and abs(v) > 3:
                    raise UserError(f"{where}: sentiment {v} is outside [-3, 3]; rescale it")
                if c != "sentiment" and v < 0:
                    raise UserError(f"{where}: {c} {v} is negative; emotion intensities are >= 0")
                values[c] = v
        if "split" in at and row[at["split"]].strip():
            split = row[at["split"]].strip().lower()
            if split not in SPLITS:
                raise UserError(f"{where}: split {split!r} must be 'train' or 'test'")
            if table.splits.get(vid, split) != split:
                raise UserError(f"{where}: video {vid!r} is given both splits")
            table.splits[vid] = split
        if values:
            table.rows.setdefault(vid, []).append(LabelRow(line, None if utt is None else int(utt), start, end, values))
    if unknown:
        log.warning("%s: %d video(s) not found among the clips, ignored: %s", path, len(unknown), ", ".join(sorted(unknown)[:5]))
    return table


def label_matrix(segments: list[Segment], rows: list[LabelRow] = (), source: str = "labels.csv") -> np.ndarray:
    """(n_utt, 7) float32 labels: transcript labels, then labels.csv rows on top; NaN where unknown.

    Raises ExtractionError when a row's utterance index or span matches no utterance of the clip.
    """
    out = np.full((len(segments), len(LABEL_COLUMNS)), np.nan, dtype=np.float32)
    for i, seg in enumerate(segments):
        for c, v in seg.labels.items():
            if c in LABEL_COLUMNS:
                out[i, LABEL_COLUMNS.index(c)] = v
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    for r in rows:
        if r.utterance is not None:
            if r.utterance >= len(segments):
                raise ExtractionError(f"{source}: row {r.row}: utterance {r.utterance} but the clip has {len(segments)} utterances (0-based)")
            targets = [r.utterance]
        elif r.start is not None:
            inter = np.clip(np.minimum(ends, r.end) - np.maximum(starts, r.start), 0, None)
            union = np.maximum(ends, r.end) - np.minimum(starts, r.start)
            iou = inter / np.maximum(union, 1e-9)
            best = int(np.argmax(iou))
            if iou[best] < MIN_IOU:
                raise ExtractionError(f"{source}: row {r.row}: no utterance matches {r.start:.2f}-{r.end:.2f} s (best overlap {iou[best]:.2f} < {MIN_IOU})")
            targets = [best]
        else:
            targets = list(range(len(segments)))
        for c, v in r.values.items():
            out[targets, LABEL_COLUMNS.index(c)] = v
    return out

