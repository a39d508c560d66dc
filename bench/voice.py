"""Which voice features transfer to another recording set-up: leave-one-corpus-out on the training parts of
RAVDESS (one studio, acted, English) and URDU (TV talk shows, many rooms, Urdu), never on their test splits.

    python bench/voice.py [--cache .cache/pretrained/voice]

Reads the per-clip features that `make pretrained` computes (pipeline/release/voice.py; computed here first if
missing): each clip as recorded and, for training clips, two augmented copies (gain, reverberation, noise,
codec), each cut three ways (Whisper's utterance, the whole clip as a one-line .txt gives it, and Whisper's with
jittered ends). For each feature set (IS09, eGeMAPSv02, Whisper tiny.en encoder states) and normalisation (none,
or each speaker's rows z-scored with that speaker's statistics), a logistic regression (standardised features,
C = 0.1, balanced class weights; nothing tuned on the scored corpus) is trained on one corpus and scored on the
other's recordings as they are, on the four emotions both have (anger, happiness, neutral, sadness): unweighted
average recall (UAR, chance 25%), for the Whisper cut and for the whole-clip cut. A third column trains on both
corpora minus their validation speakers (RAVDESS actors 17-18, URDU speakers SM2 and SM7) and scores those.
Then, for the chosen feature set, what augmentation and cut jitter add: the same figures trained without the
augmented copies, and trained on the Whisper cut only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.release.voice import CUTS, FEATURE_SETS, VoiceClip, compute_all, load_clip, voice_clips  # noqa: E402

CLASSES = ("anger", "happiness", "neutral", "sadness")
VALID = {("ravdess", "actor17"), ("ravdess", "actor18"), ("urdu", "SM2"), ("urdu", "SM7")}


def table(clips: list[VoiceClip], cache: Path) -> dict[str, dict]:
    """feature set -> {"x": (n, versions, cuts, dim), "clips": [...]} for the training clips of the four classes."""
    keep = [c for c in clips if c.split == "train" and c.emotion in CLASSES]
    data = [load_clip(cache, c) for c in keep]
    return {name: np.stack([d[name] for d in data]) for name in FEATURE_SETS}, keep


def rows(x: np.ndarray, idx: list[int], versions: slice, cuts: list[int]) -> np.ndarray:
    return x[idx][:, versions][:, :, cuts].reshape(-1, x.shape[-1])


def normalised(x: np.ndarray, clips: list[VoiceClip]) -> np.ndarray:
    """Each speaker's rows (all versions and cuts) z-scored with that speaker's own statistics."""
    out = x.copy()
    speakers = np.array([c.corpus + c.speaker for c in clips])
    for s in set(speakers):
        sel = speakers == s
        flat = x[sel].reshape(-1, x.shape[-1])
        out[sel] = (x[sel] - flat.mean(axis=0)) / (flat.std(axis=0) + 1e-6)
    return out


def uar(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in np.unique(y)]))


def score(x: np.ndarray, clips: list[VoiceClip], train: list[int], test: list[int], train_versions: slice = slice(None),
          train_cuts: tuple[str, ...] = CUTS) -> dict[str, float]:
    """UAR of a logistic regression trained on clips `train` (versions, cuts) and scored on the recordings as they
    are of clips `test`, per test cut."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y_of = np.array([CLASSES.index(c.emotion) for c in clips])
    cut_idx = [CUTS.index(c) for c in train_cuts]
    n_rep = len(range(x.shape[1])[train_versions]) * len(cut_idx)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
    model.fit(rows(x, train, train_versions, cut_idx), np.repeat(y_of[train], n_rep))
    out = {cut: uar(y_of[test], model.predict(rows(x, test, slice(0, 1), [CUTS.index(cut)]))) for cut in ("whisper", "whole")}
    # the scored clips' own degraded copies (their augmented versions, Whisper cut): another channel than recorded
    out["degraded"] = uar(np.repeat(y_of[test], x.shape[1] - 1), model.predict(rows(x, test, slice(1, None), [CUTS.index("whisper")])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "pretrained" / "voice")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not (args.shared / "ravdess").is_dir() or not (args.shared / "urdu").is_dir():
        print(f"{args.shared}: RAVDESS and URDU not found; nothing to measure")
        return
    clips = voice_clips(args.shared)
    t = time.time()
    compute_all(clips, args.cache, args.workers)
    feats, keep = table(clips, args.cache)
    print(f"{len(keep)} training clips of the four shared emotions ({time.time() - t:.0f} s to load/compute)")
    ravdess = [i for i, c in enumerate(keep) if c.corpus == "ravdess"]
    urdu = [i for i, c in enumerate(keep) if c.corpus == "urdu"]
    fit = [i for i, c in enumerate(keep) if (c.corpus, c.speaker) not in VALID]
    valid = [i for i, c in enumerate(keep) if (c.corpus, c.speaker) in VALID]
    print("\nUAR (%), 4 emotions, chance 25; scored on the recordings as they are, cut by Whisper / the whole clip, and on")
    print("their degraded copies (gain, reverberation, noise, codec; Whisper cut)")
    print(f"{'features':<12} {'normalise':<12} {'RAVDESS -> URDU':>24} {'URDU -> RAVDESS':>24} {'both -> valid speakers':>24}")
    best = None
    for name, x in feats.items():
        for norm in ("none", "per speaker"):
            xx = normalised(x, keep) if norm != "none" else x
            a = score(xx, keep, ravdess, urdu)
            b = score(xx, keep, urdu, ravdess)
            c = score(xx, keep, fit, valid)
            cells = [f"{100 * r['whisper']:.1f} / {100 * r['whole']:.1f} / {100 * r['degraded']:.1f}" for r in (a, b, c)]
            print(f"{name:<12} {norm:<12} {cells[0]:>24} {cells[1]:>24} {cells[2]:>24}")
            loco = np.mean([a["whisper"], a["whole"], b["whisper"], b["whole"]])
            if best is None or loco > best[0]:
                best = (loco, name, norm)
    _, name, norm = best
    print(f"\nbest by the mean of the four leave-one-corpus-out figures: {name}, normalise {norm}")
    x = normalised(feats[name], keep) if norm != "none" else feats[name]
    print(f"\n{name}: what augmentation and cut jitter add (UAR %, Whisper cut / whole clip / degraded copies)")
    for label, versions, cuts in (("all copies, all cuts", slice(None), CUTS), ("no augmented copies", slice(0, 1), CUTS),
                                  ("Whisper cut only", slice(None), ("whisper",)), ("neither", slice(0, 1), ("whisper",))):
        cells = [score(x, keep, tr, te, versions, cuts) for tr, te in ((ravdess, urdu), (urdu, ravdess), (fit, valid))]
        print(f"  {label:<22} " + "   ".join(f"{100 * r['whisper']:.1f} / {100 * r['whole']:.1f} / {100 * r['degraded']:.1f}" for r in cells))


if __name__ == "__main__":
    main()
