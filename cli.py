#!/usr/bin/env python3
"""Multilogue command line: extract | import | train | evaluate | predict | info.

Thin by design: parse, connect progress and logging, call one library function, and turn known user
errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from data.dataset import EMOTIONS
from data.errors import UserError
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.asr import TRANSCRIBERS

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _tqdm_progress(desc: str, unit: str):
    """A progress callback for library code: callback(done, total, **postfix)."""
    from tqdm import tqdm

    state: dict = {}

    def callback(done: int, total: int, **postfix) -> None:
        bar = state.get("bar")
        new, title = postfix.pop("_new", False), postfix.pop("_desc", desc)
        if bar is None or new:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total, desc=title, unit=unit, leave=True, dynamic_ncols=True)
        bar.n = done
        if postfix:
            bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False)
        bar.refresh()
        if done >= total:
            bar.close()
            state.pop("bar", None)

    return callback


# ---------------------------------------------------------------- extract
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
    p.add_argument("--text", default="glove", choices=("glove",), help="text extractor")
    p.add_argument("--glove", type=Path, default=None, help="GloVe/word2vec text file to use instead of the packaged GloVe 6B 50-d (converted once, then memory-mapped)")
    p.add_argument("--audio-features", default="IS09", choices=("IS09", "eGeMAPSv02", "emobase", "ComParE_2016", "mfcc"), help="openSMILE functionals, or torchaudio MFCC mean+std")
    p.add_argument("--visual", default="facemesh", choices=("facemesh", "pyfeat", "none"), help="visual extractor")
    p.add_argument("--pyfeat-weights", type=Path, default=None, help="folder with py-feat's model weights (offline use of --visual pyfeat)")
    p.add_argument("--fps", type=float, default=5.0, help="video frames sampled per second")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores; 1 = in this process)")
    p.add_argument("--test-ratio", type=float, default=0.2, help="share of videos in the test split (unless labels.csv has a split column)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    p.add_argument("--strict", action="store_true", help="stop at the first clip that fails")
    p.add_argument("--cache-dir", type=Path, default=None, help="per-clip feature cache (default: .cache/extract beside the output)")
    p.add_argument("--asr", default=DEFAULT_ASR, choices=list(TRANSCRIBERS),
                   help="transcriber for clips without a transcript (a transcript beside the clip always wins)")
    p.set_defaults(func=cmd_extract)


def cmd_extract(args) -> int:
    from pipeline.extract import ClipFailed, extract_folder

    if args.glove is not None and not args.glove.is_file():
        raise UserError(f"--glove {args.glove}: no such file; pass a GloVe or word2vec text file")
    if args.pyfeat_weights is not None and args.visual != "pyfeat":
        raise UserError("--pyfeat-weights only applies with --visual pyfeat")
    try:
        report = extract_folder(
            args.folder, args.out, audio="mfcc" if args.audio_features == "mfcc" else "opensmile", text=args.text,
            visual=args.visual, glove=args.glove, audio_features=args.audio_features, fps=args.fps, workers=args.workers,
            test_ratio=args.test_ratio, seed=args.seed, strict=args.strict, cache_dir=args.cache_dir,
            pyfeat_weights=args.pyfeat_weights, asr=args.asr, progress=_tqdm_progress("extract", "clip"),
        )
    except ClipFailed as e:
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


# ---------------------------------------------------------------- import
def add_import(sub) -> None:
    p = sub.add_parser("import", help="import a dataset from another format")
    isub = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    s = isub.add_parser("seed", help="the seed's 9-tuple pickle", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("file", type=Path)
    s.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    s.add_argument("--label-column", default="sentiment", choices=("sentiment", *EMOTIONS), help="label column the seed's single label fills")
    s.set_defaults(func=cmd_import_seed)
    add_import_csd(isub)


def cmd_import_seed(args) -> int:
    from data.dataset import save_dataset, split_counts
    from data.seed import import_seed

    ds = import_seed(args.file, column=args.label_column)
    save_dataset(ds, args.out)
    counts = split_counts(ds)
    print(f"wrote {args.out}: {len(ds['ID'])} videos, train {counts['train'][0]} videos/{counts['train'][1]} utterances, test {counts['test'][0]}/{counts['test'][1]}")
    return 0


def add_import_csd(isub) -> None:
    s = isub.add_parser(
        "csd",
        help="CMU-MultimodalSDK computational sequences (.csd): CMU-MOSEI, CMU-MOSI",
        description="Each label interval becomes one utterance; every modality is averaged over it, weighted by overlap.",
    )
    s.add_argument("--labels", type=Path, required=True, help="labels .csd: 7 columns (CMU_MOSEI_Labels) or 1 sentiment column (CMU_MOSI_Opinion_Labels)")
    s.add_argument("--text", type=Path, help="word vectors .csd, e.g. CMU_MOSEI_TimestampedWordVectors (omitted: zero-width text features)")
    s.add_argument("--audio", type=Path, help="acoustic .csd, e.g. CMU_MOSEI_COVAREP or an openSMILE sequence")
    s.add_argument("--visual", type=Path, help="facial .csd, e.g. CMU_MOSEI_VisualFacet42")
    s.add_argument("--words", type=Path, help="words .csd (CMU_MOSEI_TimestampedWords) for the utterance sentences")
    s.add_argument("--folds", type=Path, help='JSON {"train": [...], "valid": [...], "test": [...]} of video ids (valid joins train)')
    s.add_argument("--test-ratio", type=float, default=None, help="without --folds: share of videos in test (default 0.2)")
    s.add_argument("--seed", type=int, default=None, help="without --folds: seed of the split (default 0)")
    s.add_argument("--keep-missing", action="store_true", help="keep videos missing from a modality, with zero features")
    s.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    s.set_defaults(func=cmd_import_csd)


def cmd_import_csd(args) -> int:
    from data.csd import import_csd
    from data.dataset import save_dataset

    if args.folds is not None and (args.test_ratio is not None or args.seed is not None):
        raise UserError("import csd: --folds fixes the split; drop --test-ratio/--seed, or drop --folds for a seeded split")
    test_ratio = 0.2 if args.test_ratio is None else args.test_ratio
    if not 0 <= test_ratio < 1:
        raise UserError(f"import csd: --test-ratio {test_ratio} must be in [0, 1)")
    inputs = [p for p in (args.labels, args.text, args.audio, args.visual, args.words, args.folds) if p is not None]
    if any(p.resolve() == args.out.resolve() for p in inputs):
        raise UserError(f"import csd: -o {args.out} is one of the inputs; write the dataset to a new file")
    progress = _tqdm_progress("import", "video") if sys.stderr.isatty() else None
    try:
        ds, report = import_csd(
            args.labels, text=args.text, audio=args.audio, visual=args.visual, words=args.words, folds=args.folds,
            test_ratio=test_ratio, seed=0 if args.seed is None else args.seed, keep_missing=args.keep_missing,
            progress=progress,
        )
    except UserError:
        if progress is not None:
            print(file=sys.stderr)  # end the bar's line so the error stands on its own
        raise
    save_dataset(ds, args.out)
    print(f"wrote {args.out}: " + report.summary_lines()[0])
    for line in report.summary_lines()[1:]:
        print(line)
    return 0


# ---------------------------------------------------------------- train / evaluate
def add_train(sub) -> None:
    from model.config import TASKS

    p = sub.add_parser("train", help="train Multilogue-Net on a dataset", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--emotion", default=None, help=f"with --task emotion: one of {', '.join(EMOTIONS)}, or all")
    p.add_argument("--data", type=Path, required=True, help="dataset file (ours or the seed's 9-tuple pickle)")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, metrics.json, config.json, curves.png, TensorBoard logs")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's (50 categorical, 100 regression)")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-4")
    p.add_argument("--l2", type=float, default=None, help="default: 1e-5 categorical, 1e-4 regression")
    p.add_argument("--batch-size", type=int, default=None, help="default: 128")
    p.add_argument("--dropout", type=float, default=None, help="default: 0.5 categorical, 0.25 regression")
    p.add_argument("--rec-dropout", type=float, default=None, help="default: 0.1")
    p.add_argument("--valid-ratio", type=float, default=None, help="share of training videos held out for model selection; default 0.1")
    p.add_argument("--patience", type=int, default=None, help="epochs without validation improvement before stopping; default 10")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-normalize", action="store_true", help="do not standardise features with training-set statistics")
    p.add_argument("--faithful", action="store_true", help="reproduce the seed's unmasked fusion attention over padded utterances")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its last epoch")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from model.config import TrainConfig
    from pipeline.train import format_metrics, run_training, write_summary

    if args.task == "emotion":
        if args.emotion is None:
            raise UserError(f"--task emotion needs --emotion: one of {', '.join(EMOTIONS)}, or all")
        if args.emotion != "all" and args.emotion not in EMOTIONS:
            raise UserError(f"--emotion {args.emotion}: unknown emotion; choose one of {', '.join(EMOTIONS)}, or all")
    elif args.emotion is not None:
        raise UserError(f"--emotion only goes with --task emotion (got --task {args.task})")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.valid_ratio is not None and not 0 <= args.valid_ratio < 1:
        raise UserError("--valid-ratio must be in [0, 1)")
    for name in ("dropout", "rec_dropout"):
        if getattr(args, name) is not None and not 0 <= getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1)")
    overrides = {k: getattr(args, k) for k in ("epochs", "lr", "l2", "batch_size", "valid_ratio", "patience", "seed")}
    emotions = EMOTIONS if args.emotion == "all" else [args.emotion]
    summary = {}
    for emotion in emotions:
        tcfg = TrainConfig.for_task(args.task, emotion=emotion, device=args.device, normalize=not args.no_normalize, **overrides)
        out = args.out / emotion if args.emotion == "all" else args.out
        model_overrides = {"dropout": args.dropout, "recurrent_dropout": args.rec_dropout, "mask_fusion": False if args.faithful else None}
        # with --emotion all, an interrupted run resumes the emotion it stopped in and starts those not begun
        resume = args.resume and (args.emotion != "all" or (out / "last.pt").exists())
        metrics = run_training(args.data, out, tcfg, model_overrides, progress=_tqdm_progress("train", "batch"), resume=resume)
        title = f"{args.task}{'/' + emotion if emotion else ''}: best epoch {metrics['best_epoch']} of {metrics['epochs_run']} (selected on validation)"
        print(format_metrics(metrics["test"], title=title + "\n test"))
        print(f"wrote {out}/checkpoint.pt, metrics.json, curves.png")
        summary[emotion or args.task] = metrics
    if args.emotion == "all":
        print(write_summary(summary, args.out))
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained checkpoint on a dataset's test split", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt or a run folder")
    p.add_argument("--data", type=Path, required=True, help="dataset file")
    p.add_argument("--split", default="test", choices=("train", "test", "all"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from pipeline.train import evaluate_checkpoint, format_metrics

    results = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, device=args.device)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, metrics in results.items():
            print(format_metrics(metrics, title=name))
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
    p.add_argument("--pyfeat-weights", type=Path, default=None, help="folder with py-feat's weights, for checkpoints trained on --visual pyfeat")
    p.add_argument("--asr", default=None, choices=list(TRANSCRIBERS),
                   help=f"transcriber for clips without a transcript; default: the one the checkpoint's training data was "
                        f"transcribed with ({DEFAULT_ASR} when it recorded none)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from pipeline.predict import collect_clips, predict_clips
    from pipeline.predict_output import FORMATTERS, plot_predictions, summary_line

    if args.transcript is not None:
        if len(args.clips) != 1 or args.clips[0].is_dir():
            raise UserError("--transcript goes with exactly one clip; put each clip's transcript beside it (same name) for several")
        if not args.transcript.is_file():
            raise UserError(f"--transcript {args.transcript}: no such file")
    clips = collect_clips(args.clips)
    runtime = {"visual": {"weights_dir": str(args.pyfeat_weights)}} if args.pyfeat_weights is not None else None
    progress = _tqdm_progress("predict", "clip") if len(clips) > 1 and sys.stderr.isatty() else None
    results = predict_clips(clips, args.checkpoint, transcript=args.transcript, runtime=runtime, asr=args.asr, progress=progress)
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


# ---------------------------------------------------------------- info
def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a model, dataset or checkpoint")
    isub = p.add_subparsers(dest="what", required=True, parser_class=_Parser)
    m = isub.add_parser("model", help="architecture and trainable parameter count", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from model.config import TASKS

    m.add_argument("--task", default="binary", choices=TASKS)
    m.add_argument("--dims", type=int, nargs=3, metavar=("TEXT", "AUDIO", "VISUAL"), default=(300, 384, 35))
    m.set_defaults(func=cmd_info_model)
    d = isub.add_parser("data", help="videos, utterances, dims and label coverage of a dataset file")
    d.add_argument("file", type=Path)
    d.set_defaults(func=cmd_info_data)


def cmd_info_model(args) -> int:
    from model.config import ModelConfig
    from model.network import MultilogueNet, count_parameters

    if min(args.dims) <= 0:
        raise UserError(f"--dims {' '.join(map(str, args.dims))}: every dim must be positive")
    cfg = ModelConfig.for_task(args.task, *args.dims)
    net = MultilogueNet(cfg)
    print(net)
    print(f"task={args.task} dims={'/'.join(map(str, args.dims))} trainable_parameters={count_parameters(net):,}")
    return 0


def cmd_info_data(args) -> int:
    import numpy as np

    from data.dataset import LABEL_COLUMNS, feature_dims, load_dataset, split_counts

    ds = load_dataset(args.file)
    counts = split_counts(ds)
    print(f"{args.file}: {len(ds['ID'])} videos, {sum(len(s) for s in ds['speakers'].values())} utterances")
    print(f"  train {counts['train'][0]} videos / {counts['train'][1]} utterances; test {counts['test'][0]} / {counts['test'][1]}")
    print("  dims " + " ".join(f"{m}={d}" for m, d in feature_dims(ds).items()))
    labels = np.concatenate([ds["labels"][v] for v in ds["ID"]]) if ds["ID"] else np.zeros((0, 7))
    known = (~np.isnan(labels)).sum(axis=0)
    print("  labelled utterances " + " ".join(f"{c}={int(k)}" for c, k in zip(LABEL_COLUMNS, known)))
    for m, spec in ds["meta"].get("features", {}).items():
        print(f"  {m}: {spec.get('name')} {json.dumps(spec.get('params', {}), sort_keys=True)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cli.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (add_extract, add_import, add_train, add_evaluate, add_predict, add_info):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # our packages log at INFO; third-party libraries only from WARNING unless --verbose
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for package in ("data", "model", "pipeline", "extractors"):
        logging.getLogger(package).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        hint = "; add --resume to the same command to continue from the last finished epoch" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
