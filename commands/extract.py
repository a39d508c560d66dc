"""`cli.py extract`: a folder of clips and transcripts -> a dataset file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commands.common import close_bars, progress_bar
from commands.options import add_asr, add_diarize, add_extractor_choices, add_ray, extractor_paths
from core.options import COUNT, FPS, RATIO, SEED


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
    add_extractor_choices(p)  # choices, defaults and extractor-specific options come from the extractor registry
    p.add_argument("--fps", type=FPS, default=5.0, help=f"video frames sampled per second ({FPS.describe()})")
    p.add_argument("--workers", type=COUNT, default=None, help="worker processes (default: all cores; 1 = in this process)")
    p.add_argument("--test-ratio", type=RATIO, default=0.2, help="share of videos in the test split (unless labels.csv has a split column)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the train/test split")
    p.add_argument("--strict", action="store_true", help="stop at the first clip that fails")
    p.add_argument("--cache-dir", type=Path, default=None, help="per-clip feature cache (default: .cache/extract beside the output)")
    add_asr(p, recorded=False)
    add_diarize(p, recorded=False)
    add_ray(p, "each clip is one Ray task (--workers then caps the clips in flight); the clips and --cache-dir must be on a path "
               "every node mounts at the same place, unless --ray-ship-clips")
    p.add_argument("--ray-ship-clips", action="store_true",
                   help="with --ray: send each clip (and its transcript) to the workers instead; the cache stays on this machine")
    p.set_defaults(func=cmd_extract)


def cmd_extract(args) -> int:
    from pipeline.extraction.folder import ClipFailed, extract_folder
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create(args.text, args.audio_features, args.visual, fps=args.fps, asr=args.asr, diarize=args.diarize,
                                      speakers=args.speakers, cache_dir=args.cache_dir,
                                      **extractor_paths(args))
    try:
        report = extract_folder(args.folder, args.out, settings, workers=args.workers, test_ratio=args.test_ratio, seed=args.seed,
                                strict=args.strict, ray=args.ray, ship_clips=args.ray_ship_clips, progress=progress_bar("extract", "clip"))
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
    if report.diarized:
        counts = sorted(set(report.diarized.values()))
        print(f"diarized (no speakers named): {len(report.diarized)} clip(s), {'-'.join(map(str, counts[::max(1, len(counts) - 1)]))} speaker(s) each")
    if report.failures:
        print(f"{len(report.failures)} of {report.clips} clips failed (listed in {report.failures_path}):", file=sys.stderr)
        for f in report.failures:
            print(f"  {f['clip']}: {f['reason']}", file=sys.stderr)
        return 1
    return 0
