"""`make pretrained`: the model `predict` uses out of the box, trained on real labelled corpora and evaluated on
splits its training never saw.

    python -m pipeline.release.pretrained [--shared ../shared/data] [--work .cache/pretrained] [--out model/pretrained]

1. Datasets, from ../shared/data (each built once into --work, then reused):
   - CMU-MOSI transcripts (sentiment -3..3; 62 train / 11 test videos) through `import seed --text-from-sentences`;
   - MELD (7 emotions; train -> train, dev -> test) through `import meld`;
   - GoEmotions, Ekman grouping (train + dev -> train, test -> test) through `import goemotions`;
   - RAVDESS (8 emotions, calm -> neutral; actors 19-20 held out as test) through `import ravdess`: audio and the
     Whisper transcript of each clip.
   Text: MiniLM (the best text extractor by bench/text_probe.py); audio: openSMILE IS09; no corpus here has
   labelled faces, so the shipped models have no visual modality.
2. Two models, each a seed ensemble (`train --seeds`), with validation selection on a share of the training
   conversations: sentiment regression on MOSI (its emotions are unlabelled), and the 7-way emotion classifier
   (emotion-class) on MELD + GoEmotions + RAVDESS together, a modality a corpus lacks being absent there.
3. Figures on each corpus's test split, beside a logistic / ridge regression on the same features (its strength
   chosen on the same validation split), and CREMA-D's clips in ../shared/data/cremad (predicted vs acted emotion:
   12 clips of 2 actors, 6 talking-face videos and 6 voice recordings).
4. Export: float16 ensembles in OUT/sentiment and OUT/emotion, OUT/report.json with every figure, and
   OUT/MODEL_CARD.md written from the report.

Resumable: datasets and finished runs are kept in --work; a rerun continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("pipeline.release.pretrained")

TEXT, AUDIO = "minilm", "IS09"
RAVDESS_TEST_ACTORS = (19, 20)
# Settings chosen on validation splits (never on a test split); see bench/README.md "pretrained".
RECIPE: dict[str, Any] = {
    "hidden": 64,
    "seeds": [1, 2, 3],
    "sentiment": {"task": "regression", "corpora": ["mosi"],
                  "train": {"batch_size": 4, "lr": 1e-3, "epochs": 40, "patience": 8, "valid_ratio": 0.1}},
    "emotion": {"task": "emotion-class", "corpora": ["meld", "goemotions", "ravdess"],
                "train": {"batch_size": 64, "lr": 1e-3, "epochs": 8, "patience": 3, "valid_ratio": 0.1, "select": "metric",
                          "class_weights": "sqrt", "modality_dropout": 0.2, "balance_corpora": True}},
}
# Published figures for scale (other models, other features; the splits differ where noted).
PUBLISHED = {
    "mosi": "Multilogue-Net paper: 82.10 binary accuracy on CMU-MOSEI (not MOSI); text-only BERT-era models report ~80-85 on MOSI's standard test set",
    "meld": "MELD paper (Poria et al., 2019): text-CNN 55.02 weighted F1, 7 emotions, on MELD's test set (we score its dev set)",
    "goemotions": "GoEmotions paper (Demszky et al., 2020): BERT macro F1 0.64 on the Ekman grouping, as multi-label classification",
    "ravdess": "none comparable (speaker-independent 7-way with calm as neutral, audio + transcript)",
}
CREMAD_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}


# ------------------------------------------------------------------ datasets
def build_datasets(shared: Path, work: Path, workers: int | None = None) -> dict[str, Path]:
    """Each corpus as a dataset file in `work` (built once)."""
    from data.dataset import save_dataset
    from pipeline.importers.seed import import_seed
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.importers.corpora import import_goemotions, import_meld, import_ravdess, sentences_only

    work.mkdir(parents=True, exist_ok=True)
    cache = work / "text-features"
    paths = {c: work / f"{c}.pkl" for c in ("mosi", "meld", "goemotions", "ravdess")}
    steps = {
        "mosi": lambda p: save_dataset(sentences_only(import_seed(shared / "mosi" / "mosi_dev.pkl"), TEXT, source="CMU-MOSI", cache_dir=cache), p),
        "meld": lambda p: import_meld([shared / "meld" / "train_sent_emo.csv"], p, test=[shared / "meld" / "dev_sent_emo.csv"], text=TEXT,
                                      cache_dir=cache),
        "goemotions": lambda p: import_goemotions(shared / "goemotions", p, text=TEXT, cache_dir=cache),
        "ravdess": lambda p: import_ravdess(shared / "ravdess", p, ExtractSettings.create(TEXT, AUDIO, "none", cache_dir=work / "extract-cache"),
                                            test_actors=RAVDESS_TEST_ACTORS, workers=workers),
    }
    for name, path in paths.items():
        if path.exists():
            log.info("%s: %s exists, reused", name, path)
            continue
        t = time.time()
        log.info("%s: building %s", name, path)
        steps[name](path)
        log.info("%s: built in %.0f s", name, time.time() - t)
    return paths


def load_corpora(paths: dict[str, Path], names: list[str]) -> dict:
    from data.dataset import load_dataset
    from data.merge import merge_datasets

    return merge_datasets({n: load_dataset(paths[n]) for n in names})


# ------------------------------------------------------------------ training
def train(kind: str, ds: dict, work: Path, seeds: list[int], hidden: int) -> Path:
    """One model of RECIPE[kind] as a seed ensemble in work/runs/kind; returns its folder."""
    from pipeline.training.runs import plan_runs, run_plan

    spec = RECIPE[kind]
    out = work / "runs" / kind
    model = {"d_emotion": hidden, "d_hidden": hidden, "d_global": round(1.5 * hidden), "d_party": round(1.5 * hidden)}
    runs, ensembles = plan_runs(spec["task"], out, seeds=seeds, train={**spec["train"], "device": "cpu"}, model_overrides=model)
    t = time.time()

    def done(name: str, metrics: dict) -> None:
        log.info("%s %s: %s (%.0f s so far)", kind, name, {k: round(v, 3) for k, v in metrics["test"].items() if isinstance(v, float)}, time.time() - t)

    run_plan(ds, runs, ensembles, resume=True, on_done=done)
    return out


# ------------------------------------------------------------------ evaluation
def _flat(ds: dict, vids: list[str], modalities: list[str]) -> np.ndarray:
    k = [("text", "audio", "visual").index(m) for m in modalities]
    rows = []
    for v in vids:
        present = ds["present"][v][:, k]
        x = np.concatenate([ds[f"{m}_feat"][v] for m in modalities], axis=1)
        rows.append(np.concatenate([x, present.astype(np.float32)], axis=1))  # presence flags: absent rows are zeros
    return np.concatenate(rows)


def baseline(ds: dict, task: str, train_ids: list[str], valid_ids: list[str], test: dict[str, list[str]]) -> dict[str, dict]:
    """Logistic (classes) or ridge (scores) regression on the utterances' features (+ presence flags), strength
    chosen on the validation conversations; metrics per corpus test split."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from model.tasks import get_task

    spec = get_task(task)
    mods = [m for m in ("text", "audio", "visual") if ds[f"{m}_feat"][ds["ID"][0]].shape[1] > 0]

    def xy(vids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = _flat(ds, vids, mods)
        y = np.concatenate([spec.targets(ds["labels"][v]) for v in vids])
        keep = ~np.isnan(y)
        return x[keep], y[keep]

    x_tr, y_tr = xy(train_ids)
    x_va, y_va = xy(valid_ids)
    best = None
    for strength in (1e-3, 1e-2, 1e-1, 1.0):
        if spec.regression:
            model = make_pipeline(StandardScaler(), Ridge(alpha=1 / strength)).fit(x_tr, y_tr)
            score = -np.mean(np.abs(np.clip(model.predict(x_va), -3, 3) - y_va))
        else:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000, class_weight="balanced")).fit(x_tr, y_tr.astype(int))
            score = spec.metrics(y_va, model.predict(x_va))[spec.primary[0]]
        if best is None or score > best[0]:
            best = (score, strength, model)
    _, strength, model = best
    out = {}
    for corpus, vids in test.items():
        x, y = xy(vids)
        if len(y):
            pred = np.clip(model.predict(x), -3, 3) if spec.regression else model.predict(x)
            out[corpus] = {**spec.metrics(y, pred), "strength": strength}
    return out


def evaluate_model(run: Path, ds: dict, corpora: list[str]) -> dict[str, Any]:
    """The ensemble on each corpus's test split, and the linear baseline on the same features."""
    import torch

    from model.dialogues import DialogueDataset
    from model.checkpoint import load_model
    from pipeline.training.train import evaluate, split_validation

    model, ckpt = load_model(run / "checkpoint.pt")
    task = ckpt["task"]
    cfg = json.loads((run / f"seed-{ckpt['seeds'][0]}" / "config.json").read_text())["train"]
    train_ids, valid_ids = split_validation(ds["train"], cfg["valid_ratio"], cfg["split_seed"])
    test = {c: [v for v in ds["test"] if v.startswith(c + "/")] for c in corpora}
    result: dict[str, Any] = {"task": task, "seeds": ckpt["seeds"], "corpora": {}}
    base = baseline(ds, task, train_ids, valid_ids, test)
    members = {s: load_model(run / f"seed-{s}" / "checkpoint.pt")[0] for s in ckpt["seeds"]}
    for corpus, vids in test.items():
        data = DialogueDataset(ds, vids, task)
        r = evaluate(model, data, task, torch.device("cpu"))
        if not r["n"]:
            continue
        single = [evaluate(m, data, task, torch.device("cpu"))["metrics"] for m in members.values()]
        spread = {k: [float(np.mean([m[k] for m in single])), float(np.std([m[k] for m in single]))] for k in single[0]}
        result["corpora"][corpus] = {"videos": len(vids), "utterances": r["n"], "model": r["metrics"], "single_runs": spread,
                                     "baseline": base.get(corpus, {}), "published": PUBLISHED.get(corpus)}
    return result


def cremad(shared: Path, out: Path) -> list[dict]:
    """The shipped models on CREMA-D's clips: predicted vs acted emotion (from the file name), with both
    modalities and with each alone (the other absent), to show which stream carries the prediction."""
    from pipeline.extraction.clips import collect_clips
    from pipeline.prediction.predict import Predictor

    folder = shared / "cremad"
    if not folder.is_dir():
        return []
    clips = collect_clips([folder])
    predictors = {"both": Predictor(out), "audio_only": Predictor(out / "emotion", modalities=["audio"]),
                  "text_only": Predictor(out / "emotion", modalities=["text"])}
    rows = []
    for clip in clips:
        row: dict[str, Any] = {"clip": clip.name, "acted": CREMAD_CODES.get(clip.stem.split("_")[2])}
        for name, predictor in predictors.items():
            utts = predictor.predict(clip)["utterances"]
            if not utts:
                row.setdefault("note", "no speech found")
                continue
            probs = np.mean([list(u["emotion_probs"].values()) for u in utts], axis=0)
            classes = list(utts[0]["emotion_probs"])
            top = classes[int(np.argmax(probs))]
            if name == "both":
                row.update(predicted=top, text=" / ".join(u["text"] for u in utts),
                           probabilities={c: round(float(p), 3) for c, p in zip(classes, probs)},
                           sentiment=round(float(np.mean([u["sentiment"] for u in utts])), 3))
            else:
                row[name] = top
        row.setdefault("predicted", None)
        rows.append(row)
    return rows


# ------------------------------------------------------------------ export
def export(run: Path, dest: Path) -> Path:
    """The ensemble as float16, with its metrics, into dest/checkpoint.pt."""
    import shutil

    from model.checkpoint import read_checkpoint, save_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    ckpt = read_checkpoint(run / "checkpoint.pt")
    ckpt.pop("path", None)
    save_checkpoint(ckpt, dest / "checkpoint.pt", half=True)
    shutil.copyfile(run / "metrics.json", dest / "metrics.json")
    return dest / "checkpoint.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the corpora (see ../shared/data/README.md)")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "pretrained", help="datasets and runs (kept for resuming)")
    ap.add_argument("--out", type=Path, default=ROOT / "model" / "pretrained", help="where the shipped model goes")
    ap.add_argument("--seeds", default=",".join(map(str, RECIPE["seeds"])), help="ensemble seeds")
    ap.add_argument("--hidden", type=int, default=RECIPE["hidden"], help="model width (D_e = D_h; D_g = D_p = 1.5x)")
    ap.add_argument("--workers", type=int, default=None, help="extraction workers (RAVDESS)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all cores)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("pipeline", "extractors", "data", "model"):
        logging.getLogger(name).setLevel(logging.INFO)
    if not args.shared.is_dir():
        print(f"error: {args.shared}: not found; the recipe trains on the corpora in ../shared/data (see its README)", file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = build_datasets(args.shared, args.work, args.workers)
    report: dict[str, Any] = {"recipe": {**RECIPE, "seeds": seeds, "hidden": args.hidden, "text": TEXT, "audio": AUDIO,
                                         "ravdess_test_actors": list(RAVDESS_TEST_ACTORS)}}
    for kind in ("sentiment", "emotion"):
        corpora = RECIPE[kind]["corpora"]
        ds = load_corpora(paths, corpora)
        run = train(kind, ds, args.work, seeds, args.hidden)
        report[kind] = evaluate_model(run, ds, corpora)
        export(run, args.out / kind)
    report["cremad"] = cremad(args.shared, args.out)
    from pipeline.release.model_card import write_model_card

    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    write_model_card(report, args.out / "MODEL_CARD.md")
    print(f"wrote {args.out}: sentiment/, emotion/, report.json, MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
