"""Frozen vs fine-tuned MiniLM inside Multilogue-Net, on the shipped model's corpora and recipe.

    python bench/finetune.py --corpus mosi [--layers 0 1 2] [--text-lr 1e-4] [--seeds 1,2,3] [--data .cache/pretrained]
    python bench/finetune.py --corpus meld --layers 0 1 --text-lr 3e-5 1e-4
    python bench/finetune.py --corpus emotion --layers 0 1        # MELD + GoEmotions + the voice corpora, as `make pretrained`

Each setting is one `cli.py train ... --seeds S` command with pipeline/release/pretrained.py's RECIPE for that
model (the sentiment settings for mosi, the emotion settings for the others), run as a child process so its
wall time and peak memory (max RSS) are its own; `--layers 0` is the frozen encoder, K > 0 adds `--finetune-text
K --text-lr LR` (one run: the seeds' networks trained together with one fine-tuned encoder). Then every model is
scored per corpus on the validation conversations it was selected on and on the test split: the seed ensemble
and its members' mean ± std. Choose on the validation columns only; the test columns are
reported, never used for a choice. A finished setting is read again, not retrained (delete its folder to rerun).
Results go to WORK/<corpus>/results.json and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPORA = {"mosi": ("sentiment", ["mosi"]), "meld": ("emotion", ["meld"]), "goemotions": ("emotion", ["goemotions"]),
           "emotion": ("emotion", ["meld", "goemotions", "voice"])}
FLAGS = {"batch_size": "--batch-size", "lr": "--lr", "epochs": "--epochs", "patience": "--patience", "valid_ratio": "--valid-ratio",
         "select": "--select", "class_weights": "--class-weights", "modality_dropout": "--modality-dropout"}


def inputs(corpus: str, data: Path, work: Path) -> list[Path]:
    """The dataset files of a setting. Several are merged by `train` with their names as video-id prefixes, as `make
    pretrained` merges them; a single corpus is written once already merged (ids "mosi/..."), so that its validation
    split is the one the recipe trains with (the split hashes the video ids)."""
    names = CORPORA[corpus][1]
    if len(names) > 1:
        return [data / f"{n}.pkl" for n in names]
    from data.dataset import load_dataset, save_dataset
    from data.merge import merge_datasets

    path = work / "data" / f"{names[0]}.pkl"
    if not path.is_file():
        save_dataset(merge_datasets({names[0]: load_dataset(data / f"{names[0]}.pkl")}), path)
    return [path]


def command(corpus: str, files: list[Path], out: Path, seeds: str, layers: int, text_lr: float, cache: Path) -> list[str]:
    """The `cli.py train` command of one setting, with the recipe's options."""
    from pipeline.release.pretrained import RECIPE

    kind, names = CORPORA[corpus]
    spec = RECIPE[kind]
    cmd = [sys.executable, str(ROOT / "cli.py"), "train", "--task", spec["task"], "--data", *map(str, files),
           "--out", str(out), "--seeds", seeds, "--hidden-size", str(RECIPE["hidden"]), "--device", "cpu"]
    for key, value in spec["train"].items():
        if key == "balance_corpora":
            cmd += ["--balance-corpora"] if value and len(names) > 1 else []
        else:
            cmd += [FLAGS[key], str(value)]
    if layers:
        cmd += ["--finetune-text", str(layers), "--text-lr", f"{text_lr:g}", "--text-cache", str(cache)]
    return cmd + continuation(out)


def continuation(out: Path) -> list[str]:
    """What `cli.py train` needs to go on in `out`: nothing when no run was started there; --resume, which reads
    finished runs (e.g. copied from `make pretrained`'s work folder) and continues interrupted ones; but --overwrite
    for a single run stopped before its first epoch was saved (its config.json alone), which --resume refuses as
    having nothing to resume and which holds no work to lose."""
    from pipeline.training.runs import RUN_FILES

    held = [folder / name for folder in [out, *out.glob("seed-*")] for name in RUN_FILES if (folder / name).exists()]
    if not held:
        return []
    return ["--overwrite"] if held == [out / "config.json"] else ["--resume"]


def run(cmd: list[str], threads: int) -> dict:
    """Run a command; its wall seconds and peak resident memory (GiB), the machine's load before and after."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "RAY_USAGE_STATS_ENABLED": "0"}
    load = os.getloadavg()[0]
    t = time.time()
    log = Path(cmd[cmd.index("--out") + 1] + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}:\n{log.read_text()[-3000:]}")
    return {"seconds": time.time() - t, "max_rss_gib": usage.ru_maxrss / 2**20, "load": [round(load, 1), round(os.getloadavg()[0], 1)]}


def scores(model, ds: dict, task: str, groups: dict[str, dict[str, list[str]]]) -> dict:
    """Per corpus and split, the metrics of a model on `ds`."""
    import torch

    from model.dialogues import DialogueDataset
    from pipeline.training.train import evaluate

    out: dict[str, dict] = {}
    for split, by_corpus in groups.items():
        for corpus, vids in by_corpus.items():
            r = evaluate(model, DialogueDataset(ds, vids, task), task, torch.device("cpu"))
            out.setdefault(corpus, {})[split] = {"n": r["n"], **r["metrics"]}
    return out


def figures(out: Path, ds: dict, task: str, split: tuple[list[str], list[str]], cache: Path) -> dict:
    """The ensemble's and each member's scores per corpus and split, on the features the ensemble reads."""
    from model.checkpoint import load_model
    from pipeline.training.finetune import adapted_dataset

    def by_corpus(vids: list[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for v in vids:
            groups.setdefault(v.split("/")[0], []).append(v)
        return groups

    groups = {"valid": by_corpus(split[1]), "test": by_corpus(ds["test"])}
    model, ckpt = load_model(out / "checkpoint.pt")
    if "text_delta" in ckpt:
        ds = adapted_dataset(ds, ckpt["text_delta"], cache)
    return {"ensemble": scores(model, ds, task, groups), "members": [scores(m, ds, task, groups) for m in model.members]}


def headline(task: str) -> list[str]:
    return ["accuracy_binary", "mae"] if task == "regression" else ["f1_weighted", "accuracy"]


def table(results: dict, task: str) -> str:
    keys = headline(task)
    rows = [f"| setting | corpus | split | ensemble {' / '.join(keys)} | members mean ± std | train time | peak RSS |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for corpus, splits in r["figures"]["ensemble"].items():
            for split in ("valid", "test"):
                ens = " / ".join(f"{splits[split][k]:.3f}" if k == "mae" else f"{splits[split][k]:.1f}" for k in keys)
                members = [m[corpus][split] for m in r["figures"]["members"]]
                spread = " / ".join(f"{np.mean([m[k] for m in members]):.{3 if k == 'mae' else 1}f} ± {np.std([m[k] for m in members]):.{3 if k == 'mae' else 1}f}"
                                    for k in keys)
                rows.append(f"| {name} | {corpus} | {split} ({splits[split]['n']}) | {ens} | {spread} | "
                            f"{r['run']['seconds'] / 60:.1f} min (load {r['run']['load'][0]}-{r['run']['load'][1]}) | {r['run']['max_rss_gib']:.2f} GiB |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--corpus", choices=list(CORPORA), required=True)
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 1], help="0: frozen; K: fine-tune the top K layers")
    ap.add_argument("--text-lr", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--data", type=Path, default=ROOT / ".cache" / "pretrained", help="the recipe's datasets (make pretrained builds them)")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench-finetune")
    ap.add_argument("--text-cache", type=Path, default=ROOT / ".cache" / "token-states")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each training (1 is fastest on a shared 2-core machine)")
    args = ap.parse_args(argv)
    from data.dataset import load_dataset
    from data.merge import merge_datasets
    from pipeline.release.pretrained import RECIPE
    from pipeline.training.train import split_validation

    kind, names = CORPORA[args.corpus]
    task, cfg = RECIPE[kind]["task"], RECIPE[kind]["train"]
    missing = [n for n in names if not (args.data / f"{n}.pkl").is_file()]
    if missing:
        print(f"error: {args.data} lacks {', '.join(n + '.pkl' for n in missing)}; run `make pretrained` (it builds them) or pass --data",
              file=sys.stderr)
        return 2
    ds = merge_datasets({n: load_dataset(args.data / f"{n}.pkl") for n in names})
    split = split_validation(ds["train"], cfg["valid_ratio"], 0, ds["meta"].get("groups"))
    files = inputs(args.corpus, args.data, args.work)
    path = args.work / args.corpus / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for layers in args.layers:
        for lr in ([None] if layers == 0 else args.text_lr):
            name = "frozen" if layers == 0 else f"top {layers} lr {lr:g}"
            out = args.work / args.corpus / ("frozen" if layers == 0 else f"k{layers}-lr{lr:g}")
            if name not in results or not (out / "checkpoint.pt").is_file():
                cmd = command(args.corpus, files, out, args.seeds, layers, lr or 0, args.text_cache)
                print(" ".join(cmd[1:]), flush=True)
                results[name] = {"command": " ".join(["python"] + [str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd[1:]]),
                                 "run": run(cmd, args.threads)}
            results[name]["figures"] = figures(out, ds, task, split, args.text_cache)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1, default=float))
            print(table({name: results[name]}, task), flush=True)
    print(table(results, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
