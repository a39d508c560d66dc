"""How much sentiment the text extractors carry: linear probes on glove vs minilm features of real CMU-MOSI
transcripts (../shared/data/mosi/mosi_dev.pkl: 62 train / 11 test videos).

Each utterance's sentence (not the file's own features) goes through the project's text extractors. A
logistic regression (binary: sentiment >= 0) and a ridge regression (score; MAE and Pearson r) are fit on the
training videos' utterances, with their regularisation strength chosen by 5-fold cross-validation grouped by
video on the training videos only; the test videos are scored once.

Then the same sentences go through `import text` (a CSV with the file's train/test split) with each extractor,
and Multilogue-Net is trained on the text-only datasets (audio and visual absent; the small-data settings of
bench/mosi.py; model selection on a validation share of the training videos) for several seeds.

    python bench/text_probe.py [--data PATH] [--extractors glove minilm] [--threads 2] [--seeds 0 1 2] [--no-multilogue] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.dataset import load_dataset  # noqa: E402
from extractors import build_extractor, spec_of  # noqa: E402
from extractors.base import Segment  # noqa: E402
from model.metrics import binary_metrics, regression_metrics  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mosi" / "mosi_dev.pkl"
C_GRID = np.logspace(-5, 2, 15)  # logistic regression: inverse strength
ALPHA_GRID = np.logspace(-2, 5, 15)  # ridge: strength
FOLDS = 5


def features(name: str, ds: dict, videos: list[str]) -> tuple[np.ndarray, float, int]:
    """(n_utt, dim) float32 text features of the videos' sentences, seconds taken, utterances without a row
    (an extractor's NaN row for an empty sentence; set to zeros, as extraction does today)."""
    extractor = build_extractor("text", name)
    extractor(None, [Segment(0.0, 1.0, text="warm up")])  # load outside the timing
    t0 = time.perf_counter()
    rows = [extractor(None, [Segment(0.0, 1.0, text=str(s)) for s in ds["sentence_in_text"][v]]) for v in videos]
    seconds = time.perf_counter() - t0
    x = np.concatenate(rows).astype(np.float32)
    missing = int(np.isnan(x).any(axis=1).sum())
    return np.nan_to_num(x, nan=0.0), seconds, missing


def probe(x_tr: np.ndarray, y_tr: np.ndarray, groups: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> dict:
    """Fit both probes on the training utterances (strength by grouped CV), score the test utterances."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = GroupKFold(n_splits=FOLDS)
    logreg = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                          {"logisticregression__C": C_GRID}, cv=cv, scoring="accuracy")
    logreg.fit(x_tr, (y_tr >= 0).astype(int), groups=groups)
    ridge = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": ALPHA_GRID}, cv=cv,
                         scoring="neg_mean_absolute_error")
    ridge.fit(x_tr, y_tr, groups=groups)
    return {
        "binary": binary_metrics(y_te, logreg.predict(x_te)),
        "regression": regression_metrics(y_te, np.clip(ridge.predict(x_te), -3, 3)),
        "C": float(logreg.best_params_["logisticregression__C"]), "cv_accuracy": 100 * float(logreg.best_score_),
        "alpha": float(ridge.best_params_["ridge__alpha"]), "cv_mae": -float(ridge.best_score_),
    }


SMALL_DATA = {"batch_size": 4, "lr": 1e-3, "epochs": 40, "patience": 8, "valid_ratio": 0.1}  # as bench/mosi.py


def multilogue(ds: dict, names: list[str], seeds: list[int], workdir: Path) -> dict:
    """Multilogue-Net on `import text` datasets of the sentences: {extractor: {task: [test metrics per seed]}}."""
    import csv

    from extractors import build_extractor as build
    from model.config import TrainConfig
    from pipeline.importers.text import text_dataset
    from pipeline.training.train import run_training

    csv_path = workdir / "mosi_sentences.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video", "speaker", "text", "sentiment", "split"])
        for split in ("train", "test"):
            for v in ds[split]:
                for spk, text, lab in zip(ds["speakers"][v], ds["sentence_in_text"][v], ds["labels"][v][:, 0]):
                    w.writerow([v, spk, text, f"{lab:.4f}", split])
    out: dict = {}
    for name in names:
        data = text_dataset(csv_path, build("text", name), cache_dir=workdir / "cache")
        for task in ("binary", "regression"):
            for seed in seeds:
                t0 = time.time()
                m = run_training(data, workdir / f"{name}-{task}-{seed}", TrainConfig.for_task(task, seed=seed, device="cpu", **SMALL_DATA))
                out.setdefault(name, {}).setdefault(task, []).append(m["test"])
                print(f"multilogue {name} {task} seed {seed}: best epoch {m['best_epoch']}/{m['epochs_run']} ({time.time() - t0:.0f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--extractors", nargs="+", default=["glove", "minilm"], help="registered text extractors")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (minilm)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the Multilogue-Net runs")
    ap.add_argument("--no-multilogue", action="store_true", help="only the linear probes")
    args = ap.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the real CMU-MOSI transcripts live in ../shared/data/mosi/)")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    y = {split: np.concatenate([ds["labels"][v][:, 0] for v in ds[split]]).astype(np.float64) for split in ("train", "test")}
    groups = np.concatenate([[v] * len(ds["labels"][v]) for v in ds["train"]])
    print(f"data: {args.data}: train {len(ds['train'])} videos / {len(y['train'])} utterances, test {len(ds['test'])} "
          f"videos / {len(y['test'])} utterances; test non-negative share {100 * np.mean(y['test'] >= 0):.1f}%")
    majority = int(np.mean(y["train"] >= 0) >= 0.5)
    report = {"majority_class": binary_metrics(y["test"], np.full(len(y["test"]), majority))}
    for name in args.extractors:
        x_tr, sec_tr, miss_tr = features(name, ds, ds["train"])
        x_te, sec_te, miss_te = features(name, ds, ds["test"])
        n = len(x_tr) + len(x_te)
        spec = spec_of(build_extractor("text", name))
        result = probe(x_tr, y["train"], groups, x_te, y["test"])
        result.update(dim=spec["dim"], params=spec["params"], seconds=sec_tr + sec_te, utt_per_s=n / (sec_tr + sec_te),
                      no_text=miss_tr + miss_te)
        report[name] = result
        print(f"{name}: {spec['dim']}-d, {n} utterances in {sec_tr + sec_te:.1f} s ({result['utt_per_s']:.0f}/s), "
              f"{result['no_text']} without text; CV picked C={result['C']:.3g} (CV accuracy {result['cv_accuracy']:.1f}), "
              f"alpha={result['alpha']:.3g} (CV MAE {result['cv_mae']:.3f})")
    print("\n| text features (test videos) | dim | binary accuracy | weighted F1 | accuracy non-zero | MAE | Pearson r |")
    print("|---|---|---|---|---|---|---|")
    m = report["majority_class"]
    print(f"| majority class of train | - | {m['accuracy']:.2f} | {m['f1_weighted']:.2f} | {m['accuracy_nonzero']:.2f} | - | - |")
    for name in args.extractors:
        r = report[name]
        b, g = r["binary"], r["regression"]
        print(f"| {name} | {r['dim']} | {b['accuracy']:.2f} | {b['f1_weighted']:.2f} | {b['accuracy_nonzero']:.2f} | "
              f"{g['mae']:.3f} | {g['pearson_r']:.3f} |")
    if not args.no_multilogue:
        import tempfile

        runs = multilogue(ds, args.extractors, args.seeds, Path(tempfile.mkdtemp(prefix="text-probe-")))
        report["multilogue"] = runs
        print(f"\n| Multilogue-Net on `import text` data (test videos, {len(args.seeds)} seeds) | binary accuracy | weighted F1 | MAE | Pearson r |")
        print("|---|---|---|---|---|")
        for name, tasks in runs.items():
            def cell(task: str, key: str, fmt: str) -> str:
                values = [r[key] for r in tasks[task]]
                return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}"

            print(f"| {name} | {cell('binary', 'accuracy', '.2f')} | {cell('binary', 'f1_weighted', '.2f')} | "
                  f"{cell('regression', 'mae', '.3f')} | {cell('regression', 'pearson_r', '.3f')} |")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
