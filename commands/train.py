"""`cli.py train`: Multilogue-Net on one or more dataset files, as one run, an emotion per run, seeds, or a grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.common import progress_bar
from commands.options import add_device, add_ray
from core.errors import UserError
from core.options import COUNT, GPUS, NON_NEGATIVE, POSITIVE, RATIO, SEED, TOKENS, TUNED_LAYERS, WIDTH, int_list
from data.schema import EMOTIONS
from model.tasks import TASK_NAMES


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train Multilogue-Net on a dataset", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--emotion", default=None, help=f"with --task emotion: one of {', '.join(EMOTIONS)}, or all")
    p.add_argument("--data", type=Path, required=True, nargs="+",
                   help="dataset file (ours or the seed's 9-tuple pickle); several are trained on together (video ids prefixed "
                   "with each file's name; a modality one of them lacks is absent there)")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, metrics.json, config.json, curves.png, TensorBoard logs")
    p.add_argument("--epochs", type=COUNT, default=None, help="default: the paper's (50 categorical, 100 regression)")
    p.add_argument("--lr", type=POSITIVE, default=None, help="default: 1e-4")
    p.add_argument("--l2", type=NON_NEGATIVE, default=None, help="default: 1e-5 categorical, 1e-4 regression")
    p.add_argument("--batch-size", type=COUNT, default=None, help="default: 128")
    p.add_argument("--dropout", type=RATIO, default=None, help="default: 0.5 categorical, 0.25 regression")
    p.add_argument("--rec-dropout", type=RATIO, default=None, help="default: 0.1")
    p.add_argument("--valid-ratio", type=RATIO, default=None, help="share of training videos held out for model selection; default 0.1")
    p.add_argument("--patience", type=COUNT, default=None, help="epochs without validation improvement before stopping; default 10")
    p.add_argument("--seed", type=SEED, default=None, help="default: 0")
    p.add_argument("--seeds", type=int_list, default=None, metavar="S1,S2,...",
                   help="train one run per seed (in OUT/seed-N) and save their ensemble in OUT, used as one model by evaluate and predict; "
                   "the members share the validation split of --seed")
    p.add_argument("--hidden-size", type=WIDTH, default=None, metavar="N",
                   help="model width: D_e = D_h = N and D_g = D_p = 1.5 N (the paper's N is 100)")
    add_device(p)
    p.add_argument("--no-normalize", action="store_true", help="do not standardise features with training-set statistics")
    p.add_argument("--faithful", action="store_true", help="reproduce the seed's unmasked fusion attention over padded utterances")
    p.add_argument("--modality-dropout", type=RATIO, default=None, metavar="P",
                   help="chance that a training dialogue loses each modality (all its utterances), so the model stays usable when one is missing; default 0")
    p.add_argument("--select", default=None, choices=("loss", "metric"),
                   help="model selection on validation: the loss (default), or the task's headline metric (e.g. weighted F1 for emotion-class)")
    p.add_argument("--balance-corpora", action="store_true", default=None,
                   help="with several --data files: repeat the smaller corpora's conversations in each epoch (by the square root of the size ratio)")
    p.add_argument("--class-weights", default=None, choices=("inverse", "sqrt", "none"),
                   help="categorical tasks: inverse class frequencies (default, the paper's), their square root, or none")
    p.add_argument("--finetune-text", type=TUNED_LAYERS, default=None, metavar="K",
                   help="train MiniLM's top K layers (1-6) with the network (data with --text minilm features); checkpoints store only "
                   "those layers. With --seeds the encoder is fine-tuned once, in OUT/encoder, and the members train on its features; "
                   "default 0: frozen sentence vectors")
    p.add_argument("--text-lr", type=POSITIVE, default=None, help="with --finetune-text: the encoder's learning rate; default 1e-4")
    p.add_argument("--token-budget", type=TOKENS, default=None, metavar="N",
                   help="with --finetune-text: word pieces the encoder runs on at once (bounds memory); default 16384")
    p.add_argument("--text-cache", type=Path, default=None, metavar="DIR",
                   help="with --finetune-text: where the frozen layers' token states are kept (computed once per corpus); "
                   "default ~/.cache/multilogue/token-states")
    p.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2",
                   help="train one run per combination of settings, in OUT/grid-KEY=V,.../, and select the best on validation "
                   "(--select), copied into OUT with selection.json; keys: lr l2 batch-size epochs patience modality-dropout "
                   "class-weights dropout rec-dropout hidden-size finetune-text text-lr (e.g. --grid lr=1e-4,1e-3 dropout=0.25,0.5)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its last epoch")
    p.add_argument("--overwrite", action="store_true", help="replace the runs already in --out (without it, a folder that holds a run is refused)")
    add_ray(p, "the runs of this command (emotions, seeds, grid points) train at once as Ray tasks and their folders are "
                "written here")
    p.add_argument("--gpus-per-run", type=GPUS, default=None, metavar="N",
                   help="with --ray: GPUs each run asks for (a fraction shares a GPU); default 1 when the cluster has GPUs, else 0")
    p.set_defaults(func=cmd_train)


def _training_data(paths: list[Path]):
    """One dataset file as it is (loaded by the trainer), or several merged in memory."""
    if len(paths) == 1:
        return paths[0]
    from data.dataset import load_dataset
    from data.merge import merge_datasets

    names = [p.stem for p in paths]
    names = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]
    return merge_datasets({n: load_dataset(p) for n, p in zip(names, paths)})


def cmd_train(args) -> int:
    from pipeline.training.runs import hidden_size_overrides, parse_grid, plan_runs, run_local, run_plan, top_level
    from pipeline.training.train import format_metrics, write_summary

    if args.task == "emotion":
        if args.emotion is None:
            raise UserError(f"--task emotion needs --emotion: one of {', '.join(EMOTIONS)}, or all")
        if args.emotion != "all" and args.emotion not in EMOTIONS:
            raise UserError(f"--emotion {args.emotion}: unknown emotion; choose one of {', '.join(EMOTIONS)}, or all")
    elif args.emotion is not None:
        raise UserError(f"--emotion only goes with --task emotion (got --task {args.task})")
    if args.resume and args.overwrite:
        raise UserError("--resume continues the runs in --out, --overwrite replaces them; give one of them")
    if args.seeds is not None and args.seed is not None:
        raise UserError("--seeds trains one run per seed; --seed then only picks the shared validation split, give it without --seeds or drop it")
    train = {k: getattr(args, k) for k in ("epochs", "lr", "l2", "batch_size", "valid_ratio", "patience", "seed", "modality_dropout",
                                           "select", "class_weights", "balance_corpora", "finetune_text", "text_lr", "token_budget")}
    train.update(device=args.device, normalize=not args.no_normalize, text_cache=None if args.text_cache is None else str(args.text_cache))
    tuning = args.finetune_text or any("finetune-text" in g for g in args.grid or [])
    if not tuning and any(v is not None for v in (args.text_lr, args.token_budget, args.text_cache)):
        raise UserError("--text-lr, --token-budget and --text-cache go with --finetune-text K; add it, or drop them")
    model_overrides = {"dropout": args.dropout, "recurrent_dropout": args.rec_dropout, "mask_fusion": False if args.faithful else None}
    if args.hidden_size is not None:
        model_overrides.update(hidden_size_overrides(args.hidden_size))
    if args.gpus_per_run is not None and args.ray is None:
        raise UserError("--gpus-per-run goes with --ray; add --ray [ADDRESS], or drop it")
    grid = parse_grid(args.grid) if args.grid else None
    runs, ensembles = plan_runs(args.task, args.out, emotion=args.emotion, seeds=args.seeds, train=train, model_overrides=model_overrides,
                                grid=grid)
    runner = run_local
    if args.ray is not None:
        from pipeline.training.runs_ray import RayRunner

        runner = RayRunner(args.ray, gpus_per_run=args.gpus_per_run)

    def report(name: str, metrics: dict) -> None:
        if "selected" in metrics:
            title = f"{args.task} {name}: {metrics['selected']} selected on validation (see selection.json)"
        elif "ensemble" in metrics:
            title = f"{args.task} {name}: ensemble of {len(metrics['ensemble'])} seeds (mean of their {'scores' if args.task == 'regression' else 'probabilities'})"
        else:
            title = f"{args.task} {name}: best epoch {metrics['best_epoch']} of {metrics['epochs_run']} (selected on validation)"
        if "/grid-" in name:  # a candidate: only its validation figures, on which the selection is made
            print(format_metrics(metrics["valid"], title=title + "\n valid"))
        else:
            print(format_metrics(metrics["test"], title=title + "\n test"))

    progress = progress_bar("train", "run" if args.ray is not None else "batch")
    results = run_plan(_training_data(args.data), runs, ensembles, resume=args.resume, overwrite=args.overwrite, progress=progress,
                       on_done=report, runner=runner, inputs=args.data)
    top = top_level(runs, ensembles)
    if len(top) > 1:
        print(write_summary({name: results[name] for name, _ in top}, args.out))
    print(f"wrote {', '.join(str(out) for _, out in top)}: checkpoint.pt, metrics.json")
    return 0
