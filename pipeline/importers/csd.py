"""Import CMU-MultimodalSDK computational sequences (.csd) into the dataset dict, without the SDK.

A .csd file is HDF5 with one root group (named after the sequence, e.g. "Opinion Segment Labels"):

    <root>/data/<video>/features    (n, d) numbers, or (n, 1) byte strings for the SDK's "words"
    <root>/data/<video>/intervals   (n, 2) start, end in seconds
    <root>/metadata/<key>           (1,) JSON strings; may be partial or missing, so it is only recorded

Recipe (CMU-MOSEI: labels CMU_MOSEI_Labels.csd, text CMU_MOSEI_TimestampedWordVectors.csd, audio
CMU_MOSEI_COVAREP.csd, visual CMU_MOSEI_VisualFacet42.csd; CMU-MOSI alike):
- every label interval becomes one utterance, ordered by start time within its video (the model reads a
  video as a dialogue in time order; meta["csd_rows"] keeps each utterance's row in the label file);
- each modality is aligned to the utterances with `pipeline.importers.align.overlap_mean` (overlap-weighted mean; where
  nothing overlaps, the modality is absent for that utterance: a zero row with `present` False, counted);
  NaN/inf in source features become 0 and are counted;
- label columns: 7 columns map straight onto LABEL_COLUMNS (CMU-MOSEI's order is sentiment, happy, sad,
  anger, surprise, disgust, fear); 1 column is sentiment (CMU-MOSI) with the emotions NaN;
- a labelled video absent from a modality file is reported and dropped, or kept (`keep_missing`) with that
  modality absent;
- splits come from a folds JSON {"train": [...], "valid": [...], "test": [...]}, or a seeded split by video.
  Valid videos join train (the trainer carves its own validation split from train); the valid list is
  kept in meta["splits"]["valid"]. The standard folds are the SDK's `standard_train_fold`,
  `standard_valid_fold` and `standard_test_fold` lists in
  mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSEI/cmu_mosei_std_folds.py and
  .../CMU_MOSI/cmu_mosi_std_folds.py (`mmdatasdk.cmu_mosei.standard_folds` once the SDK is installed).

Files are read one video at a time through h5py, so memory holds one video of one modality plus the
aligned output (utterances x dims), never a whole modality.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.importers.align import overlap_mean, words_in_segments
from core.errors import DatasetError
from core.progress import Progress
from data.schema import FORMAT_VERSION, LABEL_COLUMNS, MODALITIES, PRESENT, label_problem
from data.splits import hash_split

log = logging.getLogger(__name__)

SPEAKER = "A"  # CMU-MOSI/MOSEI videos are monologues: one party per video


class CsdFile:
    """One open computational sequence; read it video by video. Use as a context manager.

    `role` names what the file is for ("labels", "text", ...) in error messages.
    """

    def __init__(self, path: str | Path, role: str):
        import h5py

        self.path = Path(path)
        self.role = role
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file (--{role}); pass a CMU-MultimodalSDK .csd file")
        if self.path.is_dir():
            raise DatasetError(f"{self.path}: is a folder (--{role}); pass a .csd file")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise DatasetError(f"{self.path}: not a readable HDF5 computational sequence ({e}); re-download the .csd file") from e
        try:
            roots = [k for k in self._h5.keys() if isinstance(self._h5[k], h5py.Group)]
            if not roots:
                raise DatasetError(f"{self.path}: has no root group; a .csd file holds one group with 'data' and 'metadata'")
            with_data = [k for k in roots if "data" in self._h5[k]]
            if not with_data:
                raise DatasetError(f"{self.path}: root group {roots[0]!r} has no 'data' group; not a computational sequence, or a truncated download")
            if len(with_data) > 1:
                raise DatasetError(f"{self.path}: {len(with_data)} root groups with 'data' ({', '.join(map(repr, with_data))}); a .csd file holds one sequence")
            self.root = with_data[0]
            self._data = self._h5[self.root]["data"]
            if not isinstance(self._data, h5py.Group):
                raise DatasetError(f"{self.path}: '{self.root}/data' is not a group of videos")
            self.videos: list[str] = list(self._data.keys())
            self.metadata = self._read_metadata()
        except DatasetError:
            self._h5.close()
            raise
        except (OSError, KeyError, RuntimeError) as e:
            self._h5.close()
            raise DatasetError(f"{self.path}: cannot read the file's structure ({e}); re-download the .csd file") from e
        self.dim: int | None = None

    def _read_metadata(self) -> dict[str, Any]:
        """Best-effort {key: value}: JSON-decoded where possible, else the string; missing -> {}."""
        group = self._h5[self.root].get("metadata")
        out: dict[str, Any] = {}
        if group is None:
            return out
        for key in group:
            try:
                raw = group[key][()]
                raw = raw[0] if getattr(raw, "shape", ()) else raw
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                try:
                    out[key] = json.loads(text)
                except ValueError:
                    out[key] = text
            except Exception as e:  # partial metadata must never block an import
                log.debug("%s: metadata %r unreadable: %s", self.path, key, e)
        return out

    def __contains__(self, vid: str) -> bool:
        return vid in self._data

    def __enter__(self) -> "CsdFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    def _fail(self, vid: str, what: str, fix: str) -> None:
        raise DatasetError(f"{self.path}: video {vid!r}: {what}; {fix}")

    def read(self, vid: str, words: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One video's rows: (features, intervals).

        Numeric files give features (n, d) as stored (checked: 2-D, same d for every video); with
        `words=True` the features are (n,) str. Intervals are (n, 2) float64, finite, end >= start.
        """
        import h5py

        group = self._data.get(vid)
        if not isinstance(group, h5py.Group):
            self._fail(vid, f"'{self.root}/data/{vid}' is not a group", "re-download the .csd file")
        for name in ("features", "intervals"):
            if not isinstance(group.get(name), h5py.Dataset):
                self._fail(vid, f"missing '{name}'", "every video needs 'features' (n, d) and 'intervals' (n, 2)")
        try:
            feats = group["features"][()]
            iv = group["intervals"][()]
        except (OSError, RuntimeError, ValueError) as e:
            self._fail(vid, f"cannot read its arrays ({e})", "the file is damaged: re-download it")
        if iv.ndim != 2 or iv.shape[1] != 2 or iv.dtype.kind not in "fiu":
            self._fail(vid, f"intervals have shape {iv.shape} ({iv.dtype}), expected (n, 2) numbers", "intervals are start, end in seconds")
        if feats.ndim != 2:
            self._fail(vid, f"features have shape {feats.shape}, expected (n, d)", "store one feature row per interval")
        if len(feats) != len(iv):
            self._fail(vid, f"{len(feats)} feature rows but {len(iv)} intervals", "features and intervals need one row each per time step")
        iv = iv.astype(np.float64)
        if not np.isfinite(iv).all():
            row = int(np.flatnonzero(~np.isfinite(iv).all(axis=1))[0])
            self._fail(vid, f"interval {row} is not finite ({iv[row].tolist()})", "fix or re-download the file")
        bad = np.flatnonzero(iv[:, 1] < iv[:, 0])
        if len(bad):
            r = int(bad[0])
            self._fail(vid, f"interval {r} ends before it starts ({iv[r, 0]:.3f} > {iv[r, 1]:.3f} s; {len(bad)} such row(s))", "fix or re-download the file")
        is_text = feats.dtype.kind in "SOU"
        if words:
            if not is_text and len(feats):
                self._fail(vid, f"holds numbers ({feats.dtype}), not words", "pass the SDK's TimestampedWords file as --words and word vectors as --text")
            return np.array([_to_str(w) for w in feats[:, 0]], dtype=object), iv
        if is_text:
            self._fail(vid, "holds words, not feature vectors", "pass it as --words, and word vectors (e.g. CMU_MOSEI_TimestampedWordVectors.csd) as --text")
        if feats.dtype.kind not in "fiub":
            self._fail(vid, f"features have dtype {feats.dtype}, expected numbers", "pass a numeric feature sequence")
        if self.dim is None:
            self.dim = int(feats.shape[1])
        elif feats.shape[1] != self.dim:
            self._fail(vid, f"features are {feats.shape[1]}-d but earlier videos are {self.dim}-d", "every video of a sequence needs the same width")
        return feats, iv


def _to_str(w: Any) -> str:
    if isinstance(w, bytes):
        return w.decode("utf-8", "replace")
    return str(w)


@dataclass
class CsdImportReport:
    """What an import did: counts for the user, kept in meta["provenance"]["report"]."""

    label_videos: int = 0
    videos: int = 0
    utterances: int = 0
    train: tuple[int, int] = (0, 0)  # (videos, utterances)
    test: tuple[int, int] = (0, 0)
    dims: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # modality -> labelled videos absent there
    zero_overlap: dict[str, int] = field(default_factory=dict)  # utterances nothing overlapped (zeros)
    nonfinite: dict[str, int] = field(default_factory=dict)  # source values that were NaN/inf (now 0)
    dropped: list[str] = field(default_factory=list)  # videos left out for a missing modality
    filled: list[str] = field(default_factory=list)  # videos kept with zeros (--keep-missing)
    empty: list[str] = field(default_factory=list)  # labelled videos without any segment
    unlisted: list[str] = field(default_factory=list)  # imported videos in no fold (left out)
    fold_absent: list[str] = field(default_factory=list)  # fold ids with no labelled data

    def to_dict(self) -> dict:
        """Plain builtins only (the dataset file holds only builtins and arrays)."""
        d = asdict(self)
        d["train"], d["test"] = list(self.train), list(self.test)
        return d

    def summary_lines(self) -> list[str]:
        """A few lines for the CLI."""
        lines = [
            f"{self.videos} videos, {self.utterances} utterances (of {self.label_videos} labelled videos); "
            f"train {self.train[0]} videos / {self.train[1]} utterances, test {self.test[0]} / {self.test[1]}"
        ]
        for m, dim in self.dims.items():
            lines.append(
                f"  {m}: dim {dim}, missing videos {len(self.missing.get(m, []))}, "
                f"zero-overlap utterances {self.zero_overlap.get(m, 0)}, non-finite values {self.nonfinite.get(m, 0)}"
            )
        if "words" in self.missing:
            lines.append(f"  words: missing videos {len(self.missing['words'])} (their sentences are empty)")
        for label, ids, hint in (
            ("dropped (missing from a modality)", self.dropped, " (--keep-missing keeps them with zeros)"),
            ("kept with zero features (--keep-missing)", self.filled, ""),
            ("skipped (no labelled segments)", self.empty, ""),
            ("left out (in no fold)", self.unlisted, ""),
            ("fold ids not in the labels file", self.fold_absent, ""),
        ):
            if ids:
                lines.append(f"  {label}: {len(ids)}{hint}: {_preview(ids)}")
        return lines


def _preview(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f", ... (+{len(ids) - n})" if len(ids) > n else "")


def _labels_to_columns(feats: np.ndarray, path: Path, vid: str) -> np.ndarray:
    """(n, 7) or (n, 1) label rows -> (n, 7) float32 in LABEL_COLUMNS order, NaN where unknown."""
    if feats.dtype.kind not in "fiub":
        raise DatasetError(f"{path}: video {vid!r}: labels have dtype {feats.dtype}, expected numbers; pass the SDK's labels sequence as --labels")
    width = feats.shape[1]
    out = np.full((len(feats), len(LABEL_COLUMNS)), np.nan, dtype=np.float32)
    if width == len(LABEL_COLUMNS):
        out[:] = feats
    elif width == 1:
        out[:, 0] = feats[:, 0]
    else:
        raise DatasetError(
            f"{path}: video {vid!r}: {width} label columns; expected 7 (CMU-MOSEI: sentiment, happy, sad, anger, "
            "surprise, disgust, fear) or 1 (CMU-MOSI: sentiment)"
        )
    problem = label_problem(out)
    if problem:
        raise DatasetError(f"{path}: video {vid!r}: labels {problem}; is this a CMU-MOSEI/MOSI labels file?")
    return out


def load_folds(path: str | Path) -> dict[str, list[str]]:
    """Read a folds JSON: {"train": [...], "valid": [...] (optional), "test": [...]} of video ids."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the folds file ({e.strerror}); check --folds") from e
    except ValueError as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); --folds takes {{\"train\": [...], \"valid\": [...], \"test\": [...]}}") from e
    if not isinstance(obj, dict) or "train" not in obj or "test" not in obj:
        raise DatasetError(f"{path}: expected a JSON object with 'train', 'test' (and optionally 'valid') lists of video ids")
    folds: dict[str, list[str]] = {}
    for key in ("train", "valid", "test"):
        ids = obj.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(v, (str, int)) for v in ids):
            raise DatasetError(f"{path}: '{key}' must be a list of video ids")
        folds[key] = [str(v) for v in ids]
    seen: dict[str, str] = {}
    for key, ids in folds.items():
        for v in ids:
            if v in seen and seen[v] != key:
                raise DatasetError(f"{path}: video {v!r} is in both '{seen[v]}' and '{key}'; put each video in one fold")
            seen[v] = key
    return folds


def import_csd(
    labels: str | Path,
    text: str | Path | None = None,
    audio: str | Path | None = None,
    visual: str | Path | None = None,
    words: str | Path | None = None,
    folds: str | Path | None = None,
    test_ratio: float = 0.2,
    seed: int = 0,
    keep_missing: bool = False,
    progress: Progress | None = None,
) -> tuple[dict, CsdImportReport]:
    """Build a dataset dict from .csd files (see the module docstring for the rules).

    A modality without a file gets zero-width features (n_utt, 0) and the spec name "none".
    Returns (dataset, report); the dataset is not validated or saved here (use `save_dataset`).
    """
    if not 0 <= test_ratio < 1:
        raise DatasetError(f"test ratio {test_ratio} must be in [0, 1)")
    fold_lists = load_folds(folds) if folds is not None else None
    report = CsdImportReport()
    sources = dict(zip(MODALITIES, (text, audio, visual)))
    opened: dict[str, CsdFile] = {}
    label_file = CsdFile(labels, "labels")
    try:
        for m, p in sources.items():
            if p is not None:
                opened[m] = CsdFile(p, m)
        word_file = CsdFile(words, "words") if words is not None else None
        if word_file is not None:
            opened["words"] = word_file
        for m, f in opened.items():
            _refuse_labels_as(m, f, label_file)
        ds = _import_videos(label_file, opened, keep_missing, report, progress)
    finally:
        label_file.close()
        for f in opened.values():
            f.close()

    ids = list(ds["ID"])
    if not ids:
        why = f"{len(report.dropped)} dropped for a missing modality (try --keep-missing)" if report.dropped else "the labels file has no segments"
        raise DatasetError(f"{label_file.path}: no video to import ({why}); check that the files belong to the same dataset")
    if fold_lists is not None:
        train_set = set(fold_lists["train"]) | set(fold_lists["valid"])
        test_set, valid_set = set(fold_lists["test"]), set(fold_lists["valid"])
        listed = train_set | test_set
        report.fold_absent = sorted(listed - set(ids) - set(report.dropped) - set(report.empty))
        report.unlisted = [v for v in ids if v not in listed]
        if len(report.unlisted) == len(ids):
            raise DatasetError(f"{folds}: none of the {len(ids)} imported videos is in a fold; is it the folds file of this dataset?")
        _drop(ds, set(report.unlisted))
        train = [v for v in ds["ID"] if v in train_set]
        test = [v for v in ds["ID"] if v in test_set]
        splits = {"source": Path(folds).name, "valid": [v for v in ds["ID"] if v in valid_set]}
    else:
        train, test = hash_split(ids, test_ratio, seed, "test")
        splits = {"source": "random", "test_ratio": test_ratio, "seed": seed, "valid": []}
    ds["train"], ds["test"] = train, test
    ds["meta"]["splits"] = splits

    n_utt = {v: len(ds["speakers"][v]) for v in ds["ID"]}
    report.videos = len(ds["ID"])
    report.utterances = int(sum(n_utt.values()))
    report.train = (len(train), int(sum(n_utt[v] for v in train)))
    report.test = (len(test), int(sum(n_utt[v] for v in test)))
    ds["meta"]["provenance"]["report"] = report.to_dict()
    if report.dropped or report.filled:
        log.warning("%d video(s) missing from a modality were %s", len(report.dropped) + len(report.filled), "kept with zeros" if keep_missing else "dropped")
    return ds, report


def _refuse_labels_as(role: str, f: CsdFile, label_file: CsdFile) -> None:
    """DatasetError when the file given as --text/--audio/--visual/--words is a labels sequence: the --labels
    file itself, a sequence whose root or metadata says labels, or one whose first video holds the labels'
    rows (same width, intervals and values: a copy). Labels read as features would train on the answers."""
    from core.fileio import same_file

    fix = f"pass a feature sequence as --{role} (e.g. CMU_MOSEI_COVAREP.csd for audio) and the labels as --labels"
    if same_file(f.path, label_file.path):
        raise DatasetError(f"--{role} {f.path}: is the --labels file; {fix}")
    said = [s for s in (f.root, f.metadata.get("root name"), f.metadata.get("computational sequence description")) if "label" in str(s).lower()]
    if said:
        raise DatasetError(f"--{role} {f.path}: is a labels sequence (its root or metadata says {str(said[0])!r}); {fix}")
    common = [v for v in sorted(label_file.videos) if v in f]
    if common and role != "words":
        ours, iv = f.read(common[0])
        labels, liv = label_file.read(common[0])
        if ours.shape == labels.shape and np.array_equal(iv, liv) and np.array_equal(ours, labels, equal_nan=True):
            raise DatasetError(f"--{role} {f.path}: video {common[0]!r} holds the same rows as the labels file {label_file.path.name}; {fix}")


def _drop(ds: dict, vids: set[str]) -> None:
    """Remove `vids` from every per-video part of `ds`."""
    ds["ID"] = [v for v in ds["ID"] if v not in vids]
    for part in (*(ds[k] for k in ("speakers", "labels", "text_feat", "audio_feat", "visual_feat", "sentence_in_text", PRESENT)), ds["meta"]["timings"], ds["meta"]["csd_rows"]):
        for v in vids:
            part.pop(v, None)


def _import_videos(label_file: CsdFile, files: dict[str, CsdFile], keep_missing: bool, report: CsdImportReport, progress: Progress | None) -> dict:
    """Stream every labelled video through the open files; fill the dataset and the report."""
    word_file = files.get("words")
    vids = sorted(label_file.videos)
    report.label_videos = len(vids)
    report.missing = {m: [] for m in files if m != "words"}
    report.zero_overlap = {m: 0 for m in MODALITIES if m in files}
    report.nonfinite = {m: 0 for m in MODALITIES if m in files}
    if word_file is not None:
        report.missing["words"] = []

    ds: dict = {"ID": [], "speakers": {}, "labels": {}, "text_feat": {}, "audio_feat": {}, "visual_feat": {}, "sentence_in_text": {},
                PRESENT: {}, "train": [], "test": []}
    timings: dict[str, list[list[float]]] = {}
    rows: dict[str, list[int]] = {}
    pending_fill: list[str] = []  # videos to zero-fill once a modality's width is known
    for done, vid in enumerate(vids):
        if progress is not None:
            progress(done, len(vids))
        raw, seg = label_file.read(vid)
        if len(seg) == 0:
            report.empty.append(vid)
            continue
        order = np.lexsort((seg[:, 1], seg[:, 0]))  # time order; stable for equal starts and ends
        seg = seg[order]
        labels = _labels_to_columns(raw, label_file.path, vid)[order]
        absent = [m for m in files if vid not in files[m]]
        for m in absent:
            report.missing[m].append(vid)
        if any(m != "words" for m in absent) and not keep_missing:
            report.dropped.append(vid)
            continue
        if any(m != "words" for m in absent):
            report.filled.append(vid)
        feats: dict[str, np.ndarray | None] = {}
        present = np.zeros((len(seg), len(MODALITIES)), dtype=bool)  # no file, no video, nothing overlapping: absent
        for k, m in enumerate(MODALITIES):
            f = files.get(m)
            if f is None:
                feats[m] = np.zeros((len(seg), 0), dtype=np.float32)
            elif vid not in f:
                feats[m] = None  # filled below once the width is known
            else:
                x, iv = f.read(vid)
                bad = ~np.isfinite(x) if x.dtype.kind == "f" else None
                if bad is not None and bad.any():
                    report.nonfinite[m] += int(bad.sum())
                    x = np.where(bad, 0, x)
                feats[m], covered = overlap_mean(iv, x, seg)
                present[:, k] = covered
                report.zero_overlap[m] += int((~covered).sum())
        if word_file is not None and vid in word_file:
            toks, wiv = word_file.read(vid, words=True)
            sentences = words_in_segments(wiv, list(toks), seg)
        else:
            sentences = [""] * len(seg)
        ds["ID"].append(vid)
        ds["speakers"][vid] = [SPEAKER] * len(seg)
        ds["labels"][vid] = labels
        for m in MODALITIES:
            ds[f"{m}_feat"][vid] = feats[m]
        ds["sentence_in_text"][vid] = sentences
        ds[PRESENT][vid] = present
        timings[vid] = seg.tolist()
        rows[vid] = order.tolist()
        if any(feats[m] is None for m in MODALITIES):
            pending_fill.append(vid)
    if progress is not None and vids:
        progress(len(vids), len(vids))

    dims = {}
    for m in MODALITIES:
        f = files.get(m)
        if f is not None and f.dim is None:
            raise DatasetError(f"{f.path}: no labelled video of {label_file.path.name} has {m} features; is this the right file for --{m}?")
        dims[m] = f.dim if f is not None else 0
    for vid in pending_fill:
        for m in MODALITIES:
            if ds[f"{m}_feat"][vid] is None:
                ds[f"{m}_feat"][vid] = np.zeros((len(timings[vid]), dims[m]), dtype=np.float32)
    report.dims = dims

    features = {}
    for m in MODALITIES:
        f = files.get(m)
        if f is None:
            features[m] = {"name": "none", "params": {}, "dim": 0}
        else:
            features[m] = {"name": "csd", "params": {"file": f.path.name, "root": f.root, "alignment": "overlap_mean"}, "dim": dims[m]}
    provenance = {
        "importer": "csd",
        "labels": {"file": label_file.path.name, "root": label_file.root, "metadata": _plain(label_file.metadata)},
        "files": {m: f.path.name for m, f in files.items()},
    }
    ds["meta"] = {
        "format_version": FORMAT_VERSION,
        "features": features,
        "timings": timings,
        "csd_rows": rows,
        "provenance": provenance,
    }
    return ds


def _plain(value: Any) -> Any:
    """Metadata -> builtins only (dataset files refuse other objects); long strings are cut."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return value if len(value) <= 500 else value[:500] + "..."
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
