"""`cli.py info`: describe a model's architecture or a dataset file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from commands.common import Parser
from core.options import WIDTH
from model.tasks import TASK_NAMES


def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a model, dataset or checkpoint")
    isub = p.add_subparsers(dest="what", required=True, parser_class=Parser)
    m = isub.add_parser("model", help="architecture and trainable parameter count", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m.add_argument("--task", default="binary", choices=TASK_NAMES)
    m.add_argument("--dims", type=WIDTH, nargs=3, metavar=("TEXT", "AUDIO", "VISUAL"), default=(300, 384, 35),
                   help=f"input feature widths, each {WIDTH.describe()}")
    m.set_defaults(func=cmd_info_model)
    d = isub.add_parser("data", help="videos, utterances, dims and label coverage of a dataset file")
    d.add_argument("file", type=Path)
    d.set_defaults(func=cmd_info_data)


def cmd_info_model(args) -> int:
    from model.config import ModelConfig
    from model.network import MultilogueNet, count_parameters

    cfg = ModelConfig.for_task(args.task, *args.dims)
    net = MultilogueNet(cfg)
    print(net)
    print(f"task={args.task} dims={'/'.join(map(str, args.dims))} trainable_parameters={count_parameters(net):,}")
    return 0


def cmd_info_data(args) -> int:
    import numpy as np

    from data.dataset import LABEL_COLUMNS, feature_dims, load_dataset, presence_counts, split_counts

    ds = load_dataset(args.file)
    counts = split_counts(ds)
    print(f"{args.file}: {len(ds['ID'])} videos, {sum(len(s) for s in ds['speakers'].values())} utterances")
    print(f"  train {counts['train'][0]} videos / {counts['train'][1]} utterances; test {counts['test'][0]} / {counts['test'][1]}")
    print("  dims " + " ".join(f"{m}={d}" for m, d in feature_dims(ds).items()))
    print("  utterances with each modality present " + " ".join(f"{m}={c}" for m, c in presence_counts(ds).items()))
    labels = np.concatenate([ds["labels"][v] for v in ds["ID"]]) if ds["ID"] else np.zeros((0, 7))
    known = (~np.isnan(labels)).sum(axis=0)
    print("  labelled utterances " + " ".join(f"{c}={int(k)}" for c, k in zip(LABEL_COLUMNS, known)))
    for m, spec in ds["meta"].get("features", {}).items():
        print(f"  {m}: {spec.get('name')} {json.dumps(spec.get('params', {}), sort_keys=True)}")
    return 0
