"""`cli.py info`: describe a model folder or checkpoint, a model's architecture, or a dataset file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.errors import UserError
from core.options import WIDTH
from model.tasks import TASK_NAMES

ARCHITECTURE, DATA = "model", "data"


def add_info(sub) -> None:
    p = sub.add_parser(
        "info", help="describe a model folder or checkpoint, a model's architecture, or a dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="  cli.py info model/pretrained       the shipped model: tasks, inputs and extractors, measured figures, licence\n"
                    "  cli.py info runs/mine [--json]     any run folder, folder of runs or checkpoint.pt, the same way\n"
                    "  cli.py info model [--task T] [--dims TEXT AUDIO VISUAL]   the architecture and its trainable parameters\n"
                    "  cli.py info data FILE              videos, utterances, dims and label coverage of a dataset file")
    p.add_argument("target", metavar="PATH | model | data", help="a checkpoint.pt, a run folder or a folder of runs; `model`; or `data`")
    p.add_argument("file", nargs="?", type=Path, help="with `data`: the dataset file")
    p.add_argument("--json", action="store_true", help="with a PATH: the description as JSON")
    p.add_argument("--task", default=None, choices=TASK_NAMES, help="with `model` (default binary)")
    p.add_argument("--dims", type=WIDTH, nargs=3, metavar=("TEXT", "AUDIO", "VISUAL"), default=None,
                   help=f"with `model`: input feature widths, each {WIDTH.describe()} (default 300 384 35)")
    p.set_defaults(func=cmd_info, parser=p)


def cmd_info(args) -> int:
    given = [flag for flag, value in (("--task", args.task), ("--dims", args.dims), ("--json", args.json)) if value]
    if args.target == ARCHITECTURE:
        if args.file is not None or args.json:
            args.parser.error("`info model` takes --task and --dims only; to describe a model folder give its path, e.g. info model/pretrained")
        return cmd_info_model(args.task or "binary", tuple(args.dims or (300, 384, 35)))
    if args.target == DATA:
        if args.file is None or given:
            args.parser.error("`info data` takes one dataset file: info data dataset.pkl")
        return cmd_info_data(args.file)
    if args.file is not None or args.task or args.dims:
        args.parser.error(f"info {args.target}: --task, --dims and a second path go with `info model` / `info data`")
    return cmd_info_checkpoint(Path(args.target), args.json)


def cmd_info_checkpoint(path: Path, as_json: bool) -> int:
    from model.checkpoint import locate_models
    from pipeline.prediction.describe import describe_models, format_description

    if not path.exists():
        raise UserError(f"info {path}: no such file or folder; give a checkpoint.pt, a run folder or a folder of runs "
                        "(e.g. model/pretrained), or `model` / `data FILE`")
    info = describe_models(locate_models(path))
    if as_json:
        print(json.dumps({k: v for k, v in info.items() if k != "model_card"}, indent=2, ensure_ascii=False))
    else:
        print(format_description(info))
    return 0


def cmd_info_model(task: str, dims: tuple[int, int, int]) -> int:
    from model.config import ModelConfig
    from model.network import MultilogueNet, count_parameters

    cfg = ModelConfig.for_task(task, *dims)
    net = MultilogueNet(cfg)
    print(net)
    print(f"task={task} dims={'/'.join(map(str, dims))} trainable_parameters={count_parameters(net):,}")
    return 0


def cmd_info_data(file: Path) -> int:
    import numpy as np

    from data.dataset import LABEL_COLUMNS, feature_dims, load_dataset, presence_counts, split_counts

    ds = load_dataset(file)
    counts = split_counts(ds)
    print(f"{file}: {len(ds['ID'])} videos, {sum(len(s) for s in ds['speakers'].values())} utterances")
    print(f"  train {counts['train'][0]} videos / {counts['train'][1]} utterances; test {counts['test'][0]} / {counts['test'][1]}")
    print("  dims " + " ".join(f"{m}={d}" for m, d in feature_dims(ds).items()))
    print("  utterances with each modality present " + " ".join(f"{m}={c}" for m, c in presence_counts(ds).items()))
    labels = np.concatenate([ds["labels"][v] for v in ds["ID"]]) if ds["ID"] else np.zeros((0, 7))
    known = (~np.isnan(labels)).sum(axis=0)
    print("  labelled utterances " + " ".join(f"{c}={int(k)}" for c, k in zip(LABEL_COLUMNS, known)))
    for m, spec in ds["meta"].get("features", {}).items():
        print(f"  {m}: {spec.get('name')} {json.dumps(spec.get('params', {}), sort_keys=True)}")
    return 0
