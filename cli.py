#!/usr/bin/env python3
"""Multilogue command line: extract | import | train | evaluate | predict | serve | info.

Thin by design: parse, connect progress and logging, call one library function, and turn known user
errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import extractors  # the registry only: extractor modules load when an extractor is built
from data.dataset import EMOTIONS
from commands.common import (EXIT_INTERRUPTED, EXIT_USER_ERROR, EXTRACTOR_FLAGS, Parser, check_output, close_bars, extractor_flag,
                             progress_bar, terminal_bar)
from commands.imports import add_import
from data.errors import UserError
from data.options import COUNT, FPS, GPUS, MEGABYTES, NON_NEGATIVE, POSITIVE, PORT, QUEUE, RATIO, SEED, WIDTH, int_list
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.asr import TRANSCRIBERS

# ---------------------------------------------------------------- extract
def _extractor_options(args, runtime_only: bool = False) -> dict[str, Path]:
    """The registry's extractor-specific options the user gave, by keyword; UserError for a missing path."""
    given = {}
    for _, _, opt in extractors.extractor_options():
        value = getattr(args, opt.dest, None)
        if value is None or (runtime_only and not opt.runtime):
            continue
        if not (value.is_file() if opt.kind == "file" else value.is_dir()):
            raise UserError(f"{opt.flag} {value}: no such {'file' if opt.kind == 'file' else 'folder'}")
        given[opt.dest] = value
    return given


def add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="clips + transcripts -> dataset file",
        description="Turn a folder of clips (searched recursively) and the transcripts beside them into a dataset file. "
        "Features are cached per clip, so a rerun only computes new or changed clips. Exit status: 0 all clips "
        "worked, 1 some failed (the rest are written; see failures.json beside the output), 2 usage error.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("folder", type=Path, help="folder of clips: mp4 mov mpg avi mkv webm, or audio-only wav mp3 flac m4a ogg")
    p.add_argument("-o", "--out", type=Path, default=Path("dataset.pkl"), help="dataset file to write")
    # choices, defaults and extractor-specific options come from the extractor registry (extractors/__init__.py)
    for modality, flag, what in EXTRACTOR_FLAGS:
        p.add_argument(flag, default=extractors.default_choice(modality), choices=extractors.choices(modality), help=what)
    for modality, name, opt in extractors.extractor_options():
        p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; with {extractor_flag(modality)} {name}")
    p.add_argument("--fps", type=FPS, default=5.0, help=f"video frames sampled per second ({FPS.describe()})")
    p.add_argument("--workers", type=COUNT, default=None, help="worker processes (default: all cores; 1 = in this process)")
    p.add_argument("--test-ratio", type=RATIO, default=0.2, help="share of videos in the test split (unless labels.csv has a split column)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the train/test split")
    p.add_argument("--strict", action="store_true", help="stop at the first clip that fails")
    p.add_argument("--cache-dir", type=Path, default=None, help="per-clip feature cache (default: .cache/extract beside the output)")
    p.add_argument("--asr", default=DEFAULT_ASR, choices=list(TRANSCRIBERS),
                   help="transcriber for clips without a transcript (a transcript beside the clip always wins)")
    _add_ray(p, "each clip is one Ray task (--workers then caps the clips in flight); the clips and --cache-dir must be on a path "
                "every node mounts at the same place, unless --ray-ship-clips")
    p.add_argument("--ray-ship-clips", action="store_true",
                   help="with --ray: send each clip (and its transcript) to the workers instead; the cache stays on this machine")
    p.set_defaults(func=cmd_extract)


def _add_ray(p, what: str) -> None:
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help=f"run on Ray: no ADDRESS starts a Ray instance on this machine, `auto` or HOST:PORT joins a cluster; {what}")


def cmd_extract(args) -> int:
    from pipeline.extract import ClipFailed, extract_folder

    options = _extractor_options(args)
    try:
        report = extract_folder(
            args.folder, args.out, text=args.text, audio=args.audio_features, visual=args.visual, fps=args.fps,
            workers=args.workers, test_ratio=args.test_ratio, seed=args.seed, strict=args.strict, cache_dir=args.cache_dir,
            asr=args.asr, progress=progress_bar("extract", "clip"), ray=args.ray, ship_clips=args.ray_ship_clips, **options,
        )
    except ClipFailed as e:
        close_bars()
        print(f"error: --strict: stopped at {e.clip}: {e.reason}", file=sys.stderr)
        return 1
    print(
        f"wrote {report.out}: {len(report.videos)} videos, {report.utterances} utterances "
        f"(train {report.train} / test {report.test} videos; {report.cached} cached, {report.computed} computed)"
    )
    if report.audio_only:
        print(f"audio-only (visual features are zeros): {len(report.audio_only)} clip(s)")
    if report.automatic_text:
        print(f"automatic text ({report.asr}, no transcript): {len(report.automatic_text)} clip(s)")
    if report.failures:
        print(f"{len(report.failures)} of {report.clips} clips failed (listed in {report.failures_path}):", file=sys.stderr)
        for f in report.failures:
            print(f"  {f['clip']}: {f['reason']}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- train / evaluate
def add_train(sub) -> None:
    from model.config import TASKS

    p = sub.add_parser("train", help="train Multilogue-Net on a dataset", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True, choices=TASKS)
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
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
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
    p.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2",
                   help="train one run per combination of settings, in OUT/grid-KEY=V,.../, and select the best on validation "
                   "(--select), copied into OUT with selection.json; keys: lr l2 batch-size epochs patience modality-dropout "
                   "class-weights dropout rec-dropout hidden-size (e.g. --grid lr=1e-4,1e-3 dropout=0.25,0.5)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its last epoch")
    p.add_argument("--overwrite", action="store_true", help="replace the runs already in --out (without it, a folder that holds a run is refused)")
    _add_ray(p, "the runs of this command (emotions, seeds, grid points) train at once as Ray tasks and their folders are "
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
    from pipeline.runs import hidden_size_overrides, parse_grid, plan_runs, run_local, run_plan, top_level
    from pipeline.train import format_metrics, write_summary

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
                                           "select", "class_weights", "balance_corpora")}
    train.update(device=args.device, normalize=not args.no_normalize)
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
        from pipeline.runs_ray import RayRunner

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


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of trained runs on a dataset, a labelled text CSV or a folder of labelled clips",
        description="DATA may be a dataset file (its features must come from the checkpoint's extractors), a labelled text CSV "
        "(the `import text` layout) or a folder of labelled clips (transcripts and labels.csv, as `extract` reads them); the "
        "last two are turned into features with each checkpoint's own extractors, as predict does.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt, a run folder, or a folder of runs (one table per run)")
    p.add_argument("--data", type=Path, required=True, help="dataset .pkl, labelled text .csv, or folder of labelled clips")
    p.add_argument("--split", default="auto", choices=("auto", "train", "test", "all"),
                   help="auto: a dataset's test split; for a CSV or clip folder every video not marked train")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print {run: {metric: value}} as JSON on stdout")
    p.add_argument("--modalities", type=_modalities, default=None, metavar="LIST",
                   help="use only these modalities, e.g. text,audio (the others count as absent); default: all the data has")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache for a CSV or clip folder (default ~/.cache/multilogue/)")
    for modality, name, opt in extractors.extractor_options():
        if opt.runtime:
            p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; for checkpoints trained with {extractor_flag(modality)} {name}")
    p.set_defaults(func=cmd_evaluate)


def _modalities(value: str) -> list[str]:
    """`text,audio` -> ["text", "audio"] (argparse type of --modalities)."""
    from data.dataset import MODALITIES

    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names or any(n not in MODALITIES for n in names):
        raise argparse.ArgumentTypeError(f"{value!r}: give one or more of {','.join(MODALITIES)}, comma-separated")
    return names


def cmd_evaluate(args) -> int:
    from pipeline.evaluate import evaluate_runs
    from pipeline.train import format_metrics

    progress = terminal_bar("features", "step")
    results = evaluate_runs(args.checkpoint, args.data, split=args.split, device=args.device, modalities=args.modalities,
                            runtime=_runtime_settings(args) or None, cache_dir=args.cache_dir, progress=progress)
    if args.json:
        from data.fileio import json_text

        print(json_text({r.run: r.metrics for r in results}))
    else:
        print("\n\n".join(format_metrics(r.metrics, title=f"{r.run}: {r.title}") for r in results))
    return 0


# ---------------------------------------------------------------- predict
def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="per-utterance sentiment and emotions for clips",
        description="Run trained Multilogue-Net models on clips: per utterance start, end, speaker, text, sentiment "
        "(-3..3, from a regression checkpoint), label (positive/negative: a binary checkpoint's decision, else the sign "
        "of sentiment) and emotion probabilities (from emotion checkpoints). Features are extracted with the extractors "
        "recorded in the checkpoints. Exit status: 0 every clip worked, 1 some clips failed, 2 usage error.",
    )
    p.add_argument("clips", nargs="+", type=Path, help="clips, or folders of clips (searched recursively)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint.pt, a run folder, or a folder of runs (e.g. a regression run and emotion runs); default: runs/demo")
    p.add_argument("--transcript", type=Path, default=None,
                   help="transcript of the one clip (.csv .srt .vtt .txt); default: the one beside the clip, else the clip is transcribed (--asr)")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"), help="output on stdout (default: table)")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of sentiment and emotions over each clip's timeline")
    for modality, name, opt in extractors.extractor_options():
        if opt.runtime:  # settings that do not change the features: needed to rebuild the extractor here
            p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; for checkpoints trained with {extractor_flag(modality)} {name}")
    p.add_argument("--modalities", type=_modalities, default=None, metavar="LIST",
                   help="use only these modalities, e.g. text,audio: the others are not extracted and count as absent (default: all three)")
    p.add_argument("--asr", default=None, choices=list(TRANSCRIBERS),
                   help=f"transcriber for clips without a transcript; default: the one the checkpoint's training data was "
                        f"transcribed with ({DEFAULT_ASR} when it recorded none)")
    p.set_defaults(func=cmd_predict)


def _runtime_settings(args) -> dict[str, dict]:
    """modality -> extractor settings given on the command line that do not change features (e.g. py-feat's
    weights folder), to rebuild a checkpoint's extractors on this machine."""
    given = _extractor_options(args, runtime_only=True)
    runtime: dict[str, dict] = {}
    for m, _, opt in extractors.extractor_options():
        if opt.dest in given:
            runtime.setdefault(m, {})[opt.param] = str(given[opt.dest])
    return runtime


def cmd_predict(args) -> int:
    from pipeline.predict import collect_clips, predict_clips
    from pipeline.predict_output import FORMATTERS, plot_predictions, summary_line

    if args.transcript is not None:
        if len(args.clips) != 1 or args.clips[0].is_dir():
            raise UserError("--transcript goes with exactly one clip; put each clip's transcript beside it (same name) for several")
        if not args.transcript.is_file():
            raise UserError(f"--transcript {args.transcript}: no such file")
    clips = collect_clips(args.clips)
    if args.plot is not None:
        from extractors.transcripts import find_transcript
        from model.checkpoint import checkpoint_files, default_checkpoint

        models = checkpoint_files(default_checkpoint() if args.checkpoint is None else args.checkpoint)
        beside = [t for t in map(find_transcript, clips) if t is not None]
        check_output(args.plot, [*clips, *beside, *models, *([args.transcript] if args.transcript else [])], "--plot")
    runtime = _runtime_settings(args)
    progress = terminal_bar("predict", "clip") if len(clips) > 1 else None
    results = predict_clips(clips, args.checkpoint, transcript=args.transcript, runtime=runtime or None, asr=args.asr, progress=progress,
                            modalities=args.modalities)
    print(FORMATTERS[args.format](results))
    if args.plot is not None:
        plot_predictions(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)  # stderr: stdout stays parseable json/csv
    failed = [r for r in results if r.get("error")]
    for r in failed:
        print(f"error: {r['error']}", file=sys.stderr)
    if len(results) > 1 or failed:
        print(f"predicted {summary_line(results)}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- serve
def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web page and HTTP API on the models",
        description="Serve a web page (upload a clip, watch its sentiment and emotions beside the video) and an HTTP API "
        "(POST /api/predict, GET /api/models, GET /api/health; schema at /api/openapi.json). The models load once.",
    )
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint.pt, a run folder or a folder of runs (default: the shipped model, else runs/demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=PORT, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--max-upload-mb", type=MEGABYTES, default=200, help="largest clip accepted (default 200)")
    p.add_argument("--workers", type=int, default=1, choices=(1, 2), help="clips analysed at the same time, each worker with its own copy of the models (default 1)")
    p.add_argument("--max-queue", type=QUEUE, default=4, help="requests that may wait for a worker; more get 503 (default 4)")
    p.add_argument("--asr", default=None, choices=list(TRANSCRIBERS),
                   help="transcriber for clips without a transcript (default: the one the checkpoint's training data used)")
    for modality, name, opt in extractors.extractor_options():
        if opt.runtime:
            p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; for checkpoints trained with {extractor_flag(modality)} {name}")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from pipeline.serve import address, bind, create_app, is_loopback, load_predictors, run_server

    sock = bind(args.host, args.port)  # before the models load, so a taken port fails at once
    print(f"loading the models ({args.checkpoint or 'default'})...", file=sys.stderr)
    predictors = load_predictors(args.checkpoint, args.workers, asr=args.asr, runtime=_runtime_settings(args) or None)
    app = create_app(predictors, checkpoint=args.checkpoint, max_upload_mb=args.max_upload_mb, max_queue=args.max_queue)
    url = address(sock)
    if is_loopback(args.host):
        print(f"serving on {url} (this machine only; --host 0.0.0.0 serves other machines too). Ctrl-C stops.", file=sys.stderr)
    else:
        print(f"serving on {url}\nwarning: --host {args.host} is reachable from other machines; the server has no authentication "
              "and runs anything uploaded through ffmpeg. Ctrl-C stops.", file=sys.stderr)
    run_server(app, sock)
    return 0


# ---------------------------------------------------------------- info
def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a model, dataset or checkpoint")
    isub = p.add_subparsers(dest="what", required=True, parser_class=Parser)
    m = isub.add_parser("model", help="architecture and trainable parameter count", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from model.config import TASKS

    m.add_argument("--task", default="binary", choices=TASKS)
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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cli.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (add_extract, add_import, add_train, add_evaluate, add_predict, add_serve, add_info):
        add(sub)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a command as Ctrl-C does: workers ended, partial output never written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # our packages log at INFO; third-party libraries only from WARNING unless --verbose
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for package in ("data", "model", "pipeline", "extractors"):
        logging.getLogger(package).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        close_bars()
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        close_bars()
        hint = "; add --resume to the same command to continue from the last finished epoch" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
