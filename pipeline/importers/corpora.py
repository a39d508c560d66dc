"""Importers for public emotion corpora, each a thin route onto `import text` or `extract`:

    import_meld(["train_sent_emo.csv"], test=["dev_sent_emo.csv"], out="meld.pkl", text="minilm")
    import_goemotions("goemotions/", "goemotions.pkl", text="minilm")
    import_ravdess("ravdess/", "ravdess.pkl", test_actors=(19, 20))

Label mapping onto the dataset's 7 columns (sentiment, happiness, sadness, anger, surprise, disgust, fear):
- MELD: Emotion neutral -> all six 0; joy -> happiness 1; sadness, anger, surprise, disgust, fear -> that
  column 1, the others 0 (MELD gives no intensity). Sentiment negative / neutral / positive -> -1 / 0 / +1
  (a coarse score on the -3..3 scale; meta says so). A dialogue keeps its speakers (Friends characters).
  Video ids are "<file stem>/dia<Dialogue_ID>", so MELD's train and dev dialogues (whose ids restart) differ.
- GoEmotions (Ekman grouping): label ids 0 anger, 1 disgust, 2 fear, 3 joy, 4 neutral, 5 sadness, 6 surprise;
  each comment is a one-utterance conversation; every listed emotion gets 1 (a comment with several is then
  a multi-label row, whose 7-way class is the first of them in the dataset's emotion order); neutral alone ->
  all six 0; sentiment unknown. train.tsv (and dev.tsv) -> train, test.tsv -> test.
- RAVDESS (file names 03-01-EE-II-SS-RR-AA): neutral and calm -> all six 0; happy, sad, angry, fearful,
  disgust, surprised -> that column = intensity (1 normal, 2 strong), others 0; sentiment unknown. Each clip is
  a one-utterance conversation (audio only; no transcript, so the ASR transcribes the sentence); the actors in
  `test_actors` form the test split, so no test voice is heard in training.

MELD with its raw clips (`clips=DIR` holding dia<D>_utt<U>.mp4, as MELD.Raw ships them): each utterance clip is
extracted with the chosen extractors (the utterance's text as its one-line transcript, through `extract`, so
the per-clip cache, workers and failure report apply), then the utterances are put back in dialogue order.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError
from core.progress import Progress
from data.dataset import EMOTIONS, LABEL_COLUMNS, PRESENT, load_dataset, save_dataset
from pipeline.extraction.settings import ExtractSettings

log = logging.getLogger(__name__)

MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
MELD_EMOTION = {"neutral": None, "joy": "happiness", "sadness": "sadness", "anger": "anger", "surprise": "surprise",
                "disgust": "disgust", "fear": "fear"}
MELD_SENTIMENT = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
GOEMOTIONS_IDS = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: None, 5: "sadness", 6: "surprise"}
RAVDESS_EMOTION = {1: None, 2: None, 3: "happiness", 4: "sadness", 5: "anger", 6: "fear", 7: "disgust", 8: "surprise"}
RAVDESS_NAME = re.compile(r"^03-0[12]-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
TEXT_HEADER = ["video", "speaker", "text", "start", "end", *LABEL_COLUMNS, "split"]


def _emotion_cells(present: list[str] | None, intensity: float = 1.0) -> list[str]:
    """Six label cells: the listed emotions at `intensity`, the others 0 (None: unknown, all empty)."""
    if present is None:
        return [""] * len(EMOTIONS)
    return [f"{intensity:g}" if e in present else "0" for e in EMOTIONS]


# ------------------------------------------------------------------ MELD
def read_meld(path: str | Path) -> list[dict]:
    """Rows of a MELD *_sent_emo.csv: {"dialogue", "utterance", "speaker", "text", "emotion", "sentiment", "start",
    "end"}; UserError naming the file, line and fix for a missing column or an unknown label."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; pass MELD's train_sent_emo.csv / dev_sent_emo.csv / test_sent_emo.csv") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start}); re-save it as UTF-8") from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in MELD_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path}: not a MELD CSV, it lacks {', '.join(missing)}; expected MELD's columns ({', '.join(MELD_COLUMNS)}, ...)")
    rows = []
    for line, r in enumerate(reader, 2):
        emotion, sentiment = r["Emotion"].strip().lower(), r["Sentiment"].strip().lower()
        if emotion not in MELD_EMOTION or sentiment not in MELD_SENTIMENT:
            raise UserError(f"{path}: line {line}: emotion {emotion!r} / sentiment {sentiment!r}; MELD uses "
                            f"{', '.join(MELD_EMOTION)} and {', '.join(MELD_SENTIMENT)}")
        try:
            dialogue, utterance = int(r["Dialogue_ID"]), int(r["Utterance_ID"])
        except ValueError:
            raise UserError(f"{path}: line {line}: Dialogue_ID / Utterance_ID are not integers") from None
        words = " ".join(r["Utterance"].split())
        if not words:
            raise UserError(f"{path}: line {line}: an utterance without text; fix or delete the row")
        rows.append({"dialogue": dialogue, "utterance": utterance, "speaker": r["Speaker"].strip() or "A", "text": words,
                     "emotion": MELD_EMOTION[emotion], "sentiment": MELD_SENTIMENT[sentiment],
                     "start": r.get("StartTime", ""), "end": r.get("EndTime", "")})
    rows.sort(key=lambda x: (x["dialogue"], x["utterance"]))
    return rows


def _meld_csv(files: dict[Path, str], out_csv: Path) -> None:
    """Write MELD files ({csv: split}) as one `import text` CSV."""
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TEXT_HEADER)
        for path, split in files.items():
            for r in read_meld(path):
                emotions = [] if r["emotion"] is None else [r["emotion"]]
                w.writerow([f"{path.stem}/dia{r['dialogue']}", r["speaker"], r["text"], "", "", f"{r['sentiment']:g}",
                            *_emotion_cells(emotions), split])


def import_meld(train: list[str | Path], out: str | Path, *, test: list[str | Path] = (), clips: str | Path | None = None,
                text: str = "glove", cache_dir: str | Path | None = None, progress: Progress | None = None,
                settings: ExtractSettings | None = None, workers: int | None = None) -> dict:
    """MELD's CSVs (`train` files -> train split, `test` files -> test) -> a dataset written to `out`.

    Without `clips`: text only (`import text`). With `clips`: a folder of MELD's utterance clips
    (dia<D>_utt<U>.mp4, in subfolders named like the CSVs' stems or all together); every modality is extracted
    with `extract` (`settings`, default: `text` and the default audio and visual extractors, cached in
    `cache_dir`; `workers` processes) and the utterances are grouped back into dialogues. Returns the dataset.
    """
    from core.fileio import check_writable, refuse_overwrite

    out = Path(out)
    files = {Path(p): "train" for p in train} | {Path(p): "test" for p in test}
    check_writable(out, "-o")
    refuse_overwrite(out, list(files), "-o")
    with tempfile.TemporaryDirectory(prefix="multilogue-meld-") as tmp:
        table = Path(tmp) / "meld.csv"
        _meld_csv(files, table)
        if clips is None:
            ds = _text_dataset(table, text, cache_dir, progress)
        else:
            settings = settings or ExtractSettings.create(text, cache_dir=cache_dir)
            ds = _meld_from_clips(files, Path(clips), Path(tmp), settings, workers, progress)
    ds["meta"]["provenance"].update(corpus="MELD", files=[str(p) for p in files],
                                    label_mapping="sentiment negative/neutral/positive -> -1/0/+1; joy -> happiness; no intensities")
    save_dataset(ds, out)
    return ds


def _text_dataset(table: Path, text: str, cache_dir: Any, progress: Progress | None) -> dict:
    from extractors import build_extractor
    from pipeline.importers.text import text_dataset

    return text_dataset(table, build_extractor("text", text), cache_dir=cache_dir, progress=progress)


def _meld_from_clips(files: dict[Path, str], clips: Path, tmp: Path, settings: ExtractSettings, workers: int | None,
                     progress: Progress | None) -> dict:
    """Stage each utterance clip with a one-line transcript and its labels, extract them all, regroup dialogues."""
    from extractors.media import VIDEO_SUFFIXES
    from pipeline.extraction.folder import extract_folder

    if not clips.is_dir():
        raise UserError(f"--clips {clips}: not a folder; pass the folder of MELD's dia<D>_utt<U>.mp4 clips")
    stage = tmp / "clips"
    stage.mkdir()
    labels = ["video,utterance,sentiment," + ",".join(EMOTIONS) + ",split"]
    order: dict[str, list[str]] = {}  # dialogue video id -> utterance clip ids in order
    speakers: dict[str, list[str]] = {}
    missing = 0
    for path, split in files.items():
        for r in read_meld(path):
            name = f"dia{r['dialogue']}_utt{r['utterance']}"
            found = next((c for d in (clips / path.stem, clips) for c in (d / (name + s) for s in VIDEO_SUFFIXES) if c.is_file()), None)
            if found is None:
                missing += 1
                continue
            uid = f"{path.stem}/{name}"
            (stage / path.stem).mkdir(exist_ok=True)
            os.symlink(found.resolve(), stage / path.stem / (name + found.suffix))
            (stage / path.stem / f"{name}.txt").write_text(r["text"] + "\n", encoding="utf-8")
            emotions = [] if r["emotion"] is None else [r["emotion"]]
            labels.append(f"{uid},0,{r['sentiment']:g}," + ",".join(_emotion_cells(emotions)) + f",{split}")
            vid = f"{path.stem}/dia{r['dialogue']}"
            order.setdefault(vid, []).append(uid)
            speakers.setdefault(vid, []).append(r["speaker"])
    if missing:
        log.warning("%s: %d utterance clip(s) named in the CSVs are missing; their utterances are left out", clips, missing)
    if not order:
        raise UserError(f"--clips {clips}: none of the CSVs' dia<D>_utt<U> clips is there")
    (stage / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    report = extract_folder(stage, tmp / "utterances.pkl", settings, workers=workers, progress=progress)
    for failure in report.failures:
        log.warning("Skipping %s due to %s", failure["clip"], failure["reason"])
    per_utt = load_dataset(tmp / "utterances.pkl")
    return regroup(per_utt, order, speakers)


def regroup(per_utt: dict, order: dict[str, list[str]], speakers: dict[str, list[str]]) -> dict:
    """A dataset of one-utterance videos -> dialogues: order[vid] lists the utterance video ids in order
    (those absent from per_utt are skipped); speakers[vid] the speaker of each listed utterance."""
    from data.dataset import empty_dataset

    ds = empty_dataset(features=per_utt["meta"]["features"], provenance=dict(per_utt["meta"]["provenance"]))
    split_of = {v: "test" for v in per_utt["test"]} | {v: "train" for v in per_utt["train"]}
    for vid, utts in order.items():
        keep = [(u, s) for u, s in zip(utts, speakers[vid]) if u in split_of]
        if not keep:
            continue
        ds["ID"].append(vid)
        ds["speakers"][vid] = [s for _, s in keep]
        for key in ("labels", "text_feat", "audio_feat", "visual_feat", PRESENT):
            ds[key][vid] = np.concatenate([per_utt[key][u] for u, _ in keep])
        ds["sentence_in_text"][vid] = [per_utt["sentence_in_text"][u][0] for u, _ in keep]
        (ds["test"] if split_of[keep[0][0]] == "test" else ds["train"]).append(vid)
    return ds


# ------------------------------------------------------------------ sentences of any dataset
def sentences_only(ds: dict, text: str, source: Any = "dataset", cache_dir: str | Path | None = None,
                   progress: Progress | None = None) -> dict:
    """A dataset's sentences, labels, speakers, timings and splits with text features recomputed by the text
    extractor `text` and audio and visual absent: e.g. CMU-MOSI's transcripts from the seed pickle, whose own
    features (extractors fit on its videos) no clip can reproduce."""
    from extractors import build_extractor
    from pipeline.importers.text import TextCorpus, text_dataset

    corpus = TextCorpus(Path(str(source)), has_split=True)
    for vid in ds["ID"]:
        labels = ds["labels"][vid]
        utts = []
        for i, (spk, sentence) in enumerate(zip(ds["speakers"][vid], ds["sentence_in_text"][vid])):
            row = {c: float(v) for c, v in zip(LABEL_COLUMNS, labels[i]) if not np.isnan(v)}
            utts.append({"line": i, "speaker": spk, "text": " ".join(str(sentence).split()), "start": None, "end": None, "labels": row})
        corpus.utterances[vid] = utts
    corpus.splits = {v: "train" for v in ds["train"]} | {v: "test" for v in ds["test"]}
    out = text_dataset(corpus, build_extractor("text", text), cache_dir=cache_dir, progress=progress)
    out["meta"]["timings"] = dict(ds["meta"].get("timings", {}))
    out["meta"]["provenance"].update(sentences_of=str(source), original=ds["meta"].get("provenance", {}))
    return out


# ------------------------------------------------------------------ GoEmotions
def import_goemotions(folder: str | Path, out: str | Path, *, text: str = "glove", cache_dir: str | Path | None = None,
                      progress: Progress | None = None, limit: int | None = None) -> dict:
    """GoEmotions (Ekman grouping: train.tsv, dev.tsv, test.tsv, labels.txt) -> a text-only dataset written to
    `out`; train and dev -> train, test -> test. `limit` keeps the first N comments of each file (for quick runs)."""
    from core.fileio import check_writable, refuse_overwrite

    folder, out = Path(folder), Path(out)
    check_writable(out, "-o")
    refuse_overwrite(out, [folder / n for n in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt")], "-o")
    names = (folder / "labels.txt").read_text(encoding="utf-8").split() if (folder / "labels.txt").is_file() else None
    if names != ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]:
        raise UserError(f"{folder}: expected GoEmotions' Ekman grouping (labels.txt: anger disgust fear joy neutral sadness surprise)")
    with tempfile.TemporaryDirectory(prefix="multilogue-goemotions-") as tmp:
        table = Path(tmp) / "goemotions.csv"
        with open(table, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(TEXT_HEADER)
            for stem, split in (("train", "train"), ("dev", "train"), ("test", "test")):
                path = folder / f"{stem}.tsv"
                if not path.is_file():
                    raise UserError(f"{path}: missing; GoEmotions has train.tsv, dev.tsv and test.tsv")
                for line, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if limit is not None and line > limit:
                        break
                    parts = row.split("\t")
                    if len(parts) != 3:
                        raise UserError(f"{path}: line {line}: expected text<TAB>label ids<TAB>comment id")
                    words, ids, comment = parts
                    try:
                        emotions = [GOEMOTIONS_IDS[int(i)] for i in ids.split(",")]
                    except (KeyError, ValueError):
                        raise UserError(f"{path}: line {line}: label ids {ids!r} are not in 0..6") from None
                    words = " ".join(words.split())
                    if words:
                        w.writerow([f"{stem}/{comment}", "A", words, "", "", "", *_emotion_cells([e for e in emotions if e]), split])
        ds = _text_dataset(table, text, cache_dir, progress)
    ds["meta"]["provenance"].update(corpus="GoEmotions (Ekman grouping)", folder=str(folder.resolve()))
    save_dataset(ds, out)
    return ds


# ------------------------------------------------------------------ RAVDESS
def stage_ravdess(folder: str | Path, stage: str | Path, test_actors: tuple[int, ...] = (19, 20)) -> int:
    """Links RAVDESS clips (Actor_*/03-0[12]-EE-II-SS-RR-AA.*) into `stage` with a labels.csv (emotion,
    intensity, split by actor), ready for `extract`. Returns the number of clips."""
    folder, stage = Path(folder), Path(stage)
    rows = ["video,sentiment," + ",".join(EMOTIONS) + ",split"]
    count = 0
    for clip in sorted(folder.glob("Actor_*/*")):
        m = RAVDESS_NAME.match(clip.stem)
        if m is None or clip.suffix.lower() not in (".wav", ".flac", ".mp4", ".mp3"):
            continue
        emotion, intensity, actor = int(m.group(1)), int(m.group(2)), int(m.group(5))
        if emotion not in RAVDESS_EMOTION:
            raise UserError(f"{clip}: emotion code {emotion:02d} is not RAVDESS's 01-08")
        target = stage / clip.parent.name / clip.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(clip.resolve(), target)
        e = RAVDESS_EMOTION[emotion]
        split = "test" if actor in test_actors else "train"
        rows.append(f"{clip.parent.name}/{clip.stem},," + ",".join(_emotion_cells([e] if e else [], float(intensity))) + f",{split}")
        count += 1
    if not count:
        raise UserError(f"{folder}: no RAVDESS clips (Actor_*/03-01-EE-II-SS-RR-AA.flac/.wav) found")
    (stage / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return count


def import_ravdess(folder: str | Path, out: str | Path, settings: ExtractSettings | None = None, *, test_actors: tuple[int, ...] = (19, 20),
                   stage: str | Path | None = None, workers: int | None = None, progress: Progress | None = None):
    """RAVDESS -> a dataset written to `out`, through `extract` with `settings` (the ASR transcribes the sentence).
    `stage` keeps the linked folder (and so the extraction cache beside `out` stays valid across runs)."""
    from pipeline.extraction.folder import extract_folder

    out = Path(out)
    stage = Path(stage) if stage is not None else out.parent / f"{out.stem}_clips"
    stage_ravdess(folder, stage, test_actors)
    report = extract_folder(stage, out, settings, workers=workers, progress=progress)
    return report
