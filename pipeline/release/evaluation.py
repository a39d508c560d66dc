"""The shipped models' figures on splits their training never saw: each test split of the training corpora (the
network and a linear baseline on the same features), and the end-to-end pipeline on real clips (predict as a user
runs it: RAVDESS's held-out actors with either segmenter, URDU's held-out speakers, CREMA-D's clips with each
modality, and calm speech that must not come out as anger, fear or disgust).

    probs, labels, voiced = network_outputs(model, ds, videos)  # (n, C) probabilities, (n,) class ids, (n,) heard a voice
    split_figures(model, ds, rule, baseline)                      # per test group: model (raw and calibrated) vs baseline
    ravdess_clips(out, shared, actors), ..., calm_clips(...)     # the end-to-end rows of the card
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

CALM_PROBABILITY = 0.6  # calm speech must not be called anger, fear or disgust above this
ALARMING = ("anger", "fear", "disgust")
RAVDESS_SENTENCES = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


def network_outputs(model: Any, ds: dict, videos: list[str], task: str = "emotion-class") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's class probabilities (n, C), the labels (n,) and whether the network heard a voice (n,) bool, of
    every labelled utterance of `videos`."""
    import torch

    from data.schema import MODALITIES
    from model.dialogues import DialogueDataset, collate
    from model.tasks import get_task

    data = DialogueDataset(ds, videos, task)
    probs, labels, voiced = [], [], []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(data), 256):
            batch = collate([data[i] for i in range(start, min(len(data), start + 256))])
            out = model(*batch.inputs())
            keep = batch.mask & ~torch.isnan(batch.targets)
            probs.append(get_task(task).outputs(out[keep]))
            labels.append(batch.targets[keep].long().numpy())
            voiced.append(batch.present[keep][:, MODALITIES.index("audio")].numpy())
    if not probs:
        return np.zeros((0, len(get_task(task).classes))), np.zeros(0, int), np.zeros(0, bool)
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(voiced)


def emotion_scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """accuracy, weighted and macro F1, per-class F1 (model.metrics), UAR (mean recall over the classes present) and
    ECE, all in % but ECE."""
    from model import metrics as M
    from model.tasks import EMOTION_CLASSES
    from pipeline.prediction.readings import expected_calibration_error

    pred = probs.argmax(axis=1)
    out = M.multiclass_metrics(labels, pred, EMOTION_CLASSES)
    out["uar"] = float(100 * np.mean([np.mean(pred[labels == k] == k) for k in np.unique(labels)]))
    out["ece"] = expected_calibration_error(probs, labels)
    return out


def test_groups(ds: dict) -> dict[str, list[str]]:
    """Named test splits of the merged emotion dataset: each text corpus, and each voice corpus per cut."""
    groups: dict[str, list[str]] = {}
    for vid in ds["test"]:
        parts = vid.split("/")
        if parts[0] != "voice":
            groups.setdefault(parts[0], []).append(vid)
            continue
        cut = parts[-1].split("-", 1)[1]
        groups.setdefault(f"{parts[1]} ({'Whisper cut' if cut == 'whisper' else 'whole clip'})", []).append(vid)
    return groups


def split_figures(model: Any, ds: dict, rule: Any, baseline: Callable[[list[str]], np.ndarray] | None) -> dict[str, dict]:
    """Per test group: utterances, the network's scores before and after calibration (rule: the
    pipeline.prediction.readings.FusionRule whose temperatures predict applies), and the baseline's."""
    out = {}
    for name, vids in test_groups(ds).items():
        probs, labels, voiced = network_outputs(model, ds, vids)
        if not len(labels):
            continue
        row = {"utterances": int(len(labels)), "model": emotion_scores(labels, rule.calibrate(probs, voiced)),
               "uncalibrated_ece": emotion_scores(labels, probs)["ece"]}
        if baseline is not None:
            pred = baseline(vids)
            row["baseline"] = emotion_scores(labels, np.eye(probs.shape[1])[pred])
        out[name] = row
    return out


# ------------------------------------------------------------------ end to end, on clips
def _predict(predictor: Any, clip: Path, transcript: Path | None = None) -> list[dict]:
    return predictor.predict(clip, transcript=transcript)["utterances"]


def _clip_reading(utts: list[dict], key: str | None = None) -> tuple[str | None, float | None]:
    """The clip's emotion: the reading `key` (None: the fused one) averaged over its utterances, and its probability."""
    rows = [u["emotion_probs"] if key is None else u.get("readings", {}).get(key, {}).get("probs") for u in utts]
    rows = [r for r in rows if r]
    if not rows:
        return None, None
    classes = list(rows[0])
    mean = np.mean([[r[c] for c in classes] for r in rows], axis=0)
    return classes[int(np.argmax(mean))], float(mean.max())


def ravdess_clips(out: Path, shared: Path, actors: tuple[int, ...]) -> dict[str, Any]:
    """7-way accuracy on the held-out actors' clips through predict: cut by Whisper (no transcript) and by a
    one-line .txt transcript beside each clip (placed over the whole clip), words + voice."""
    from pipeline.prediction.predict import Predictor
    from pipeline.release.voice import RAVDESS, RAVDESS_EMOTIONS

    clips = [p for a in actors for p in sorted((shared / "ravdess" / f"Actor_{a:02d}").glob("*.flac"))]
    if not clips:
        return {}
    predictor = Predictor(out / "emotion")
    result: dict[str, Any] = {"clips": len(clips)}
    with tempfile.TemporaryDirectory(prefix="multilogue-ravdess-") as tmp:
        for segmenter in ("whisper", "transcript"):
            right, total = 0, 0
            for clip in clips:
                m = RAVDESS.match(clip.stem)
                truth = RAVDESS_EMOTIONS[int(m.group(1))]
                transcript = None
                if segmenter == "transcript":
                    transcript = Path(tmp) / f"{clip.stem}.txt"
                    transcript.write_text(RAVDESS_SENTENCES[m.group(3)] + "\n", encoding="utf-8")
                predicted, _ = _clip_reading(_predict(predictor, clip, transcript))
                right += predicted == truth
                total += 1
            result[segmenter] = 100.0 * right / total
    return result


def urdu_clips(out: Path, shared: Path, speakers: tuple[str, ...]) -> dict[str, Any]:
    """The voice alone (the words of Urdu speech transcribed by an English model mean nothing) on the held-out
    speakers' clips through predict: 7-way accuracy and UAR over the four emotions URDU has."""
    from pipeline.prediction.predict import Predictor
    from pipeline.release.voice import URDU_EMOTIONS

    predictor = Predictor(out / "emotion", modalities=["audio"])
    truth, pred = [], []
    for folder, emotion in URDU_EMOTIONS.items():
        for clip in sorted((shared / "urdu" / folder).glob("*.flac")):
            if clip.stem.split("_")[0] in speakers:
                truth.append(emotion)
                pred.append(_clip_reading(_predict(predictor, clip))[0])
    if not truth:
        return {}
    truth_a, pred_a = np.array(truth), np.array(pred)
    return {"clips": len(truth), "accuracy": float(100 * np.mean(truth_a == pred_a)),
            "uar": float(100 * np.mean([np.mean(pred_a[truth_a == e] == e) for e in np.unique(truth_a)]))}


def cremad_clips(out: Path, shared: Path) -> list[dict]:
    """CREMA-D's clips through predict: the fused reading (words + voice + face), and what the voice alone, the face
    alone and the words alone say."""
    from pipeline.prediction.predict import Predictor
    from pipeline.release.voice import CREMAD, CREMAD_EMOTIONS

    folder = shared / "cremad"
    clips = sorted(p for p in folder.glob("*") if CREMAD.match(p.stem)) if folder.is_dir() else []
    if not clips:
        return []
    full, voice, face = Predictor(out), Predictor(out / "emotion", modalities=["audio"]), Predictor(out / "emotion", modalities=["visual"])
    rows = []
    for clip in clips:
        row: dict[str, Any] = {"clip": clip.name, "acted": CREMAD_EMOTIONS[CREMAD.match(clip.stem).group(2)]}
        utts = _predict(full, clip)
        row["predicted"], row["probability"] = _clip_reading(utts)
        row["uncertain"] = any(u.get("uncertain") for u in utts)
        row["words"] = _clip_reading(utts, "words")[0]
        row["text"] = " / ".join(u["text"] for u in utts)
        row["voice_only"] = _clip_reading(_predict(voice, clip))[0]
        row["face_only"] = _clip_reading(_predict(face, clip))[0] if clip.suffix.lower() != ".mp3" else None
        row["talking_face"] = clip.suffix.lower() != ".mp3"
        rows.append(row)
    return rows


def calm_clips(out: Path, clips: dict[str, list[Path]]) -> list[dict]:
    """Calm speech (no acted emotion): per clip, the fused emotion, its probability and whether anger, fear or
    disgust came out above CALM_PROBABILITY (which must never happen)."""
    from pipeline.prediction.predict import Predictor

    predictor = Predictor(out)
    rows = []
    for kind, paths in clips.items():
        for clip in paths:
            for u in _predict(predictor, clip):
                if not u.get("emotion_probs"):
                    continue
                worst = max(ALARMING, key=lambda e: u["emotion_probs"][e])
                rows.append({"kind": kind, "clip": clip.name, "text": u["text"], "emotion": u["emotion"],
                             "probability": u["emotion_probs"][u["emotion"]], "uncertain": u.get("uncertain", False),
                             "alarming": worst, "alarming_probability": u["emotion_probs"][worst],
                             "alarm": u["emotion_probs"][worst] > CALM_PROBABILITY})
    return rows
