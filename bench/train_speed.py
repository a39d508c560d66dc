"""Training and inference throughput of Multilogue-Net on MOSEI-shaped synthetic data (CPU).

2,250 dialogues with lognormal lengths (mean ~7, max 36 utterances), dims 300/384/35, batch 128,
2 threads. Prints `TASK train_utt_per_s=N infer_utt_per_s=M` per task, and peak memory.
`--reference` also times the literal per-step implementation (tests/reference_multilogue.py: all
parties through GRU_P, softmax over the stacked history, padded steps computed, as the seed does) on
a few batches, for a same-machine comparison.

    python bench/train_speed.py [--threads 2] [--dialogues 2250] [--reference]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.dataset import empty_dataset  # noqa: E402
from model.dialogues import DialogueDataset  # noqa: E402
from model.config import ModelConfig  # noqa: E402
from model.network import MultilogueNet  # noqa: E402
from pipeline.training.train import _batches, batch_loss, class_weights  # noqa: E402

TASKS = ("binary", "regression")
DIMS = {"text": 300, "audio": 384, "visual": 35}


def mosei_like(n_dialogues: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(7) - 0.5 * 0.6**2, 0.6, n_dialogues)), 1, 36).astype(int)
    lengths[0] = 36
    ds = empty_dataset({m: {"name": "synthetic", "params": {}, "dim": d} for m, d in DIMS.items()})
    for i, n in enumerate(lengths):
        vid = f"v{i}"
        ds["ID"].append(vid)
        ds["speakers"][vid] = ["A"] * n
        labels = np.full((n, 7), np.nan, np.float32)
        labels[:, 0] = rng.uniform(-3, 3, n)
        ds["labels"][vid] = labels
        for m, d in DIMS.items():
            ds[f"{m}_feat"][vid] = rng.standard_normal((n, d), dtype=np.float32)
        ds["sentence_in_text"][vid] = [""] * n
    ds["train"] = list(ds["ID"])
    return ds


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_epoch(model, dataset, task, batch_size, forward=None, max_batches=None) -> tuple[float, float, int]:
    """(train seconds, inference seconds, utterances) for one pass over `dataset` (or its first batches)."""
    forward = forward or model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    weights = class_weights(dataset, task)
    gen = torch.Generator().manual_seed(0)
    utts = 0
    model.train()
    t0 = time.perf_counter()
    for i, batch in enumerate(_batches(dataset, batch_size, True, gen)):
        if max_batches and i >= max_batches:
            break
        opt.zero_grad(set_to_none=True)
        loss, n = batch_loss(forward(*batch.inputs()), batch, task, weights)
        loss.backward()
        opt.step()
        utts += int(batch.mask.sum())
    train_s = time.perf_counter() - t0
    model.eval()
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i, batch in enumerate(_batches(dataset, batch_size, True, gen)):
            if max_batches and i >= max_batches:
                break
            forward(*batch.inputs())
    return train_s, time.perf_counter() - t0, utts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dialogues", type=int, default=2250)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--reference", action="store_true", help="also time the literal implementation on a few batches")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ds = mosei_like(args.dialogues)
    n_utt = sum(len(s) for s in ds["speakers"].values())
    print(f"data: {args.dialogues} dialogues, {n_utt} utterances, max length {max(len(s) for s in ds['speakers'].values())}, "
          f"batch {args.batch_size}, {args.threads} threads, torch {torch.__version__}")
    for task in TASKS:
        dataset = DialogueDataset(ds, ds["train"], task)
        model = MultilogueNet(ModelConfig.for_task(task, *DIMS.values()))
        train_s, infer_s, utts = time_epoch(model, dataset, task, args.batch_size)
        print(f"{task} train_utt_per_s={utts / train_s:.0f} infer_utt_per_s={utts / infer_s:.0f}")
        if args.reference:
            from tests.reference_multilogue import reference_forward

            def ref(*inputs, _m=model):
                return reference_forward(_m, *inputs)

            r_train, r_infer, r_utts = time_epoch(model, dataset, task, args.batch_size, forward=ref, max_batches=3)
            print(f"{task} reference train_utt_per_s={r_utts / r_train:.0f} infer_utt_per_s={r_utts / r_infer:.0f} (literal loop, 3 batches)")
    print(f"peak_rss_mb={peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
