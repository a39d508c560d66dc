"""`cli.py predict`: per-utterance sentiment and emotions of clips, as a table, JSON or CSV, and a plot."""

from __future__ import annotations

import sys
from pathlib import Path

from commands.common import check_output, terminal_bar
from commands.options import add_asr, add_checkpoint, add_diarize, add_modalities, add_runtime_options, runtime_settings
from core.errors import UserError


def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="per-utterance sentiment and emotions for clips",
        description="Run trained Multilogue-Net models on clips: per utterance start, end, speaker, text, sentiment "
        "(-3..3, from a regression checkpoint), label (a binary checkpoint's positive/negative, else from the sentiment: "
        "neutral when |sentiment| < 0.5, else its sign) and emotion probabilities (from emotion checkpoints). Features are extracted with the extractors "
        "recorded in the checkpoints. Exit status: 0 every clip worked, 1 some clips failed, 2 usage error.",
    )
    p.add_argument("clips", nargs="+", type=Path, help="clips, or folders of clips (searched recursively)")
    add_checkpoint(p, what=" (e.g. a regression run and emotion runs)")
    p.add_argument("--transcript", type=Path, default=None,
                   help="transcript of the one clip (.csv .srt .vtt .txt); default: the one beside the clip, else the clip is transcribed (--asr)")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"), help="output on stdout (default: table)")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of sentiment and emotions over each clip's timeline")
    add_runtime_options(p)
    add_modalities(p, "the others are not extracted and count as absent (default: all three)")
    add_asr(p, recorded=True)
    add_diarize(p, recorded=True)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from model.checkpoint import locate_models
    from pipeline.extraction.clips import collect_clips
    from pipeline.prediction.predict import predict_clips
    from pipeline.prediction.output import FORMATTERS, plot_predictions, summary_line

    if args.transcript is not None:
        if len(args.clips) != 1 or args.clips[0].is_dir():
            raise UserError("--transcript goes with exactly one clip; put each clip's transcript beside it (same name) for several")
        if not args.transcript.is_file():
            raise UserError(f"--transcript {args.transcript}: no such file")
    clips = collect_clips(args.clips)
    models = locate_models(args.checkpoint)  # once: the plot check and the predictor use the same files
    if args.plot is not None:
        from extractors.transcripts import find_transcript

        beside = [t for t in map(find_transcript, clips) if t is not None]
        check_output(args.plot, [*clips, *beside, *models.files, *([args.transcript] if args.transcript else [])], "--plot")
    progress = terminal_bar("predict", "clip") if len(clips) > 1 else None
    results = predict_clips(clips, models, transcript=args.transcript, runtime=runtime_settings(args), asr=args.asr, progress=progress,
                            modalities=args.modalities, diarize=args.diarize, speakers=args.speakers)
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
