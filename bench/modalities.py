"""Missing modalities at test time, on real CMU-MOSI: a model trained with and without modality dropout.

Trains sentiment regression (and binary) on ../shared/data/mosi/mosi_dev.pkl (62 train / 11 test videos,
all three modalities present) with the small-data settings of bench/mosi.py, once with
`--modality-dropout 0` and once with P, for several seeds; then evaluates each model on the test videos with
all modalities, without audio, without visual, and without both (the removed modality is marked absent,
as for a clip without a face or without usable audio). Prints the mean ± std over seeds.

    python bench/modalities.py [--seeds 0 1 2] [--dropout-p 0.3] [--tasks regression binary]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.dataset import load_dataset  # noqa: E402
from model.dialogues import DialogueDataset  # noqa: E402
from model.checkpoint import load_model  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from pipeline.training.train import evaluate, run_training  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mosi" / "mosi_dev.pkl"
SMALL_DATA = {"batch_size": 4, "lr": 1e-3, "epochs": 40, "patience": 8, "valid_ratio": 0.1}
CONDITIONS = {"all": ["text", "audio", "visual"], "no audio": ["text", "visual"], "no visual": ["text", "audio"], "text only": ["text"]}
KEYS = {"regression": ["mae", "pearson_r", "accuracy_binary"], "binary": ["accuracy", "f1_weighted"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dropout-p", type=float, default=0.3, help="the modality dropout of the second model")
    ap.add_argument("--tasks", nargs="+", default=["regression", "binary"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the real CMU-MOSI features live in ../shared/data/mosi/)")
        return
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    out = Path(tempfile.mkdtemp(prefix="modalities-bench-"))
    print(f"data: {args.data}: train {len(ds['train'])} / test {len(ds['test'])} videos; settings {SMALL_DATA}; seeds {args.seeds}")
    for task in args.tasks:
        table: dict[tuple[float, str], list[dict]] = {}
        for p in (0.0, args.dropout_p):
            for seed in args.seeds:
                t0 = time.time()
                tcfg = TrainConfig.for_task(task, seed=seed, device="cpu", modality_dropout=p, **SMALL_DATA)
                run = out / f"{task}-p{p}-s{seed}"
                m = run_training(ds, run, tcfg)
                model, _ = load_model(run / "checkpoint.pt")
                for name, mods in CONDITIONS.items():
                    res = evaluate(model, DialogueDataset(ds, ds["test"], task, modalities=mods), task, torch.device("cpu"))
                    table.setdefault((p, name), []).append(res["metrics"])
                print(f"{task} p={p} seed {seed}: best epoch {m['best_epoch']}/{m['epochs_run']} ({time.time() - t0:.0f} s)", flush=True)
        keys = KEYS[task]
        print(f"\n| {task}: trained with modality dropout | test inputs | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        for (p, name), runs in table.items():
            cells = [f"{np.mean([r[k] for r in runs]):.3f} ± {np.std([r[k] for r in runs]):.3f}" for k in keys]
            print(f"| {p:g} | {name} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
