"""`cli.py evaluate`: metrics of trained runs on a dataset, a labelled text CSV or a folder of labelled clips."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.common import terminal_bar
from commands.options import add_cache_dir, add_checkpoint, add_device, add_diarize, add_modalities, add_runtime_options, runtime_settings


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of trained runs on a dataset, a labelled text CSV or a folder of labelled clips",
        description="DATA may be a dataset file (its features must come from the checkpoint's extractors), a labelled text CSV "
        "(the `import text` layout) or a folder of labelled clips (transcripts and labels.csv, as `extract` reads them); the "
        "last two are turned into features with each checkpoint's own extractors, as predict does.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_checkpoint(p, required=True, what=" (one table per run)")
    p.add_argument("--data", type=Path, required=True, help="dataset .pkl, labelled text .csv, or folder of labelled clips")
    p.add_argument("--split", default="auto", choices=("auto", "train", "test", "all"),
                   help="auto: a dataset's test split; for a CSV or clip folder every video not marked train")
    add_device(p)
    p.add_argument("--json", action="store_true", help="print {run: {metric: value}} as JSON on stdout")
    add_modalities(p, "the others count as absent (default: all the data has)")
    add_cache_dir(p, "feature cache for a CSV or clip folder (default ~/.cache/multilogue/)")
    add_runtime_options(p)
    add_diarize(p, recorded=True)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from pipeline.training.evaluate import evaluate_runs
    from pipeline.training.train import format_metrics

    progress = terminal_bar("features", "step")
    results = evaluate_runs(args.checkpoint, args.data, split=args.split, device=args.device, modalities=args.modalities,
                            runtime=runtime_settings(args), cache_dir=args.cache_dir, progress=progress,
                            diarize=args.diarize, speakers=args.speakers)
    if args.json:
        from core.fileio import json_text

        print(json_text({r.run: r.metrics for r in results}))
    else:
        print("\n\n".join(format_metrics(r.metrics, title=f"{r.run}: {r.title}") for r in results))
    return 0
