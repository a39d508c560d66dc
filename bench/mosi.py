"""Multilogue-Net on real CMU-MOSI features (../shared/data/mosi/mosi_dev.pkl) vs linear baselines.

Trains binary and regression with several seeds as one `train --seeds` command would (the members share
the validation split of seed 0; model selection on it, the test videos touched once, at the end), prints
each single run, their mean ± std, and the seed ensemble (the mean of the members' probabilities or scores),
next to logistic / ridge regression on the concatenated utterance features of the same split.

    python bench/mosi.py [--data PATH] [--seeds 0 1 2 3 4] [--paper] [--epochs E --batch-size B --lr LR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.dataset import load_dataset  # noqa: E402
from model.metrics import binary_metrics, regression_metrics  # noqa: E402
from pipeline.training.runs import plan_runs, run_plan  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mosi" / "mosi_dev.pkl"
# Settings for a dataset of ~60 training videos (the paper's batch of 128 would be one step per epoch).
SMALL_DATA = {"batch_size": 4, "lr": 1e-3, "epochs": 40, "patience": 8, "valid_ratio": 0.1}


def flat(ds: dict, videos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([np.concatenate([ds[f"{m}_feat"][v] for m in ("text", "audio", "visual")], axis=1) for v in videos])
    y = np.concatenate([ds["labels"][v][:, 0] for v in videos])
    return x, y


def baselines(ds: dict) -> dict[str, dict]:
    """Logistic / ridge regression on standardised concatenated features: {"default": ..., "best_on_test": ...}.

    "default" uses C = 1 / alpha = 1; "best_on_test" is the best of a sweep of the regularisation strength
    scored on the test videos themselves: an upper bound for the linear baseline, not a fair model.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_tr, y_tr = flat(ds, ds["train"])
    x_te, y_te = flat(ds, ds["test"])
    out: dict[str, dict] = {"binary": {}, "regression": {}}
    sweep_b, sweep_r = [], []
    for c in (1e-3, 1e-2, 1e-1, 1.0, 10.0):
        logreg = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(x_tr, (y_tr >= 0).astype(int))
        sweep_b.append((c, binary_metrics(y_te, logreg.predict(x_te))))
        ridge = make_pipeline(StandardScaler(), Ridge(alpha=1 / c)).fit(x_tr, y_tr)
        sweep_r.append((1 / c, regression_metrics(y_te, np.clip(ridge.predict(x_te), -3, 3))))
    out["binary"]["default"] = dict(sweep_b)[1.0]
    out["binary"]["best_on_test"] = max(sweep_b, key=lambda cm: cm[1]["accuracy"])[1]
    out["regression"]["default"] = dict(sweep_r)[1.0]
    out["regression"]["best_on_test"] = min(sweep_r, key=lambda am: am[1]["mae"])[1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--tasks", nargs="+", default=["binary", "regression"])
    ap.add_argument("--threads", type=int, default=2)
    for k, v in SMALL_DATA.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    ap.add_argument("--dropout", type=float, default=None)
    ap.add_argument("--paper", action="store_true", help="the paper's settings per task (batch 128, lr 1e-4, 50/100 epochs) instead of the small-data ones")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    args = ap.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the real CMU-MOSI features live in ../shared/data/mosi/)")
        return
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    settings = "the paper's per task" if args.paper else " ".join(f"{k}={getattr(args, k)}" for k in SMALL_DATA)
    print(f"data: {args.data} train {len(ds['train'])} videos / test {len(ds['test'])} videos; settings: {settings}")
    base = baselines(ds)
    out_root = args.out or Path(tempfile.mkdtemp(prefix="mosi-bench-"))
    report = {}
    for task in args.tasks:
        keys = ["accuracy", "f1_weighted", "accuracy_nonzero", "f1_nonzero"] if task == "binary" else ["mae", "pearson_r", "accuracy_binary", "accuracy_7"]
        overrides = {"patience": args.patience, "valid_ratio": args.valid_ratio} if args.paper else {k: getattr(args, k) for k in SMALL_DATA}
        plan, ensembles = plan_runs(task, out_root / task, seeds=args.seeds, train={**overrides, "device": "cpu"},
                                    model_overrides={"dropout": args.dropout})
        t0 = time.time()

        def done(name: str, m: dict) -> None:
            print(f"{task} {name}: best epoch {m['best_epoch']}/{m['epochs_run']} ({time.time() - t0:.0f} s) "
                  + " ".join(f"{k}={m['test'][k]:.3f}" for k in keys), flush=True)

        results = run_plan(ds, plan, ensembles, on_done=done)
        runs = [results[r.name]["test"] for r in plan]
        ensemble = results[ensembles[0].name]["test"]
        mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
        std = {k: float(np.std([r[k] for r in runs])) for k in keys}
        report[task] = {"multilogue_mean": mean, "multilogue_std": std, "ensemble": ensemble, "baseline": base[task], "runs": runs}
        print(f"\n| {task} (test, {len(args.seeds)} seeds) | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        print("| Multilogue-Net, single runs | " + " | ".join(f"{mean[k]:.3f} ± {std[k]:.3f}" for k in keys) + " |")
        print(f"| Multilogue-Net, ensemble of the {len(args.seeds)} | " + " | ".join(f"{ensemble[k]:.3f}" for k in keys) + " |")
        name = "logistic" if task == "binary" else "ridge"
        print(f"| {name} regression (C = 1 / alpha = 1) | " + " | ".join(f"{base[task]['default'][k]:.3f}" for k in keys) + " |")
        print(f"| {name} regression (strength swept, best on test) | " + " | ".join(f"{base[task]['best_on_test'][k]:.3f}" for k in keys) + " |\n")
    (out_root / "mosi_report.json").write_text(json.dumps(report, indent=2))
    print(f"runs and mosi_report.json in {out_root}")


if __name__ == "__main__":
    main()
