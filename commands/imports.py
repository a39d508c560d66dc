"""`cli.py import seed | csd | text | meld | goemotions | ravdess`: datasets from other formats and corpora."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import extractors
from commands.common import Parser, check_output, progress_bar, terminal_bar
from commands.options import add_cache_dir, add_extractor_choices, extractor_paths
from core.errors import UserError
from core.options import COUNT, RATIO, SEED, Number, int_list
from data.dataset import EMOTIONS


TEXT_CACHE_HELP = "text feature cache (default ~/.cache/multilogue/text-features)"


def add_import(sub) -> None:
    p = sub.add_parser("import", help="import a dataset from another format")
    isub = p.add_subparsers(dest="format", required=True, parser_class=Parser)
    s = isub.add_parser("seed", help="the seed's 9-tuple pickle", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("file", type=Path)
    s.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    s.add_argument("--label-column", default="sentiment", choices=("sentiment", *EMOTIONS), help="label column the seed's single label fills")
    s.add_argument("--text-from-sentences", default=None, choices=extractors.choices("text"), metavar="EXTRACTOR",
                   help="keep the sentences, labels, speakers and splits but not the pickle's features: text features from this "
                   f"extractor ({', '.join(extractors.choices('text'))}), audio and visual absent (features a clip can give)")
    s.set_defaults(func=cmd_import_seed)
    add_import_csd(isub)
    add_import_text(isub)
    add_import_corpora(isub)


def cmd_import_seed(args) -> int:
    from data.dataset import save_dataset, split_counts
    from pipeline.importers.seed import import_seed

    check_output(args.out, [args.file])
    ds = import_seed(args.file, column=args.label_column, text_from_sentences=args.text_from_sentences)
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
    s.add_argument("--test-ratio", type=RATIO, default=None, help="without --folds: share of videos in test (default 0.2)")
    s.add_argument("--seed", type=SEED, default=None, help="without --folds: seed of the split (default 0)")
    s.add_argument("--keep-missing", action="store_true", help="keep videos missing from a modality, with zero features")
    s.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    s.set_defaults(func=cmd_import_csd)


def cmd_import_csd(args) -> int:
    from pipeline.importers.csd import import_csd
    from data.dataset import save_dataset

    if args.folds is not None and (args.test_ratio is not None or args.seed is not None):
        raise UserError("import csd: --folds fixes the split; drop --test-ratio/--seed, or drop --folds for a seeded split")
    test_ratio = 0.2 if args.test_ratio is None else args.test_ratio
    check_output(args.out, [p for p in (args.labels, args.text, args.audio, args.visual, args.words, args.folds) if p is not None])
    ds, report = import_csd(
        args.labels, text=args.text, audio=args.audio, visual=args.visual, words=args.words, folds=args.folds,
        test_ratio=test_ratio, seed=0 if args.seed is None else args.seed, keep_missing=args.keep_missing,
        progress=terminal_bar("import", "video"),
    )
    save_dataset(ds, args.out)
    print(f"wrote {args.out}: " + report.summary_lines()[0])
    for line in report.summary_lines()[1:]:
        print(line)
    return 0


def add_import_text(isub) -> None:
    s = isub.add_parser(
        "text",
        help="a CSV of utterances (video,speaker,text[,start,end][,labels][,split]): text features only",
        description="Each row is an utterance; the rows of one video are its conversation, in order. Label columns "
        "sentiment (-3..3) and happiness,sadness,anger,surprise,disgust,fear (>= 0; empty = unknown); split train/test "
        "per video. Audio and visual are absent. Every row is checked first: a bad row stops the import with its line "
        "number and nothing is written.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument("file", type=Path, help="the CSV (UTF-8, header row)")
    s.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    add_extractor_choices(s, ("text",))
    s.add_argument("--test-ratio", type=RATIO, default=0.2, help="share of videos in test, for videos without a split value")
    s.add_argument("--seed", type=SEED, default=0, help="seed of the split")
    add_cache_dir(s, TEXT_CACHE_HELP)
    s.set_defaults(func=cmd_import_text)


def cmd_import_text(args) -> int:
    import numpy as np

    from data.dataset import split_counts
    from pipeline.importers.text import import_text

    from pipeline.extraction.settings import extractor_choices

    # the text extractor and its options, checked as extract checks them (audio and visual are absent here)
    _, params = extractor_choices(args.text, **extractor_paths(args))["text"]
    progress = terminal_bar("text features", "chunk")
    ds = import_text(args.file, args.out, text=args.text, text_params=params, test_ratio=args.test_ratio, seed=args.seed,
                     cache_dir=args.cache_dir, progress=progress)
    counts = split_counts(ds)
    labelled = sum(int((~np.isnan(ds["labels"][v])).any(axis=1).sum()) for v in ds["ID"]) if ds["ID"] else 0
    print(f"wrote {args.out}: {len(ds['ID'])} videos, {counts['train'][1] + counts['test'][1]} utterances ({labelled} labelled; "
          f"train {counts['train'][0]} / test {counts['test'][0]} videos), text {ds['meta']['features']['text']['name']} "
          f"{ds['meta']['features']['text']['dim']}-d, audio and visual absent")
    return 0


def add_import_corpora(isub) -> None:
    m = isub.add_parser("meld", help="MELD (multi-party dialogues from Friends; 7 emotions, 3 sentiments): its CSVs, and its clips if you have them",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                        description="Text only from the CSVs; with --clips (MELD.Raw's dia<D>_utt<U>.mp4) all three modalities. "
                        "Emotion joy -> happiness, neutral -> no emotion; sentiment negative/neutral/positive -> -1/0/+1.")
    m.add_argument("train", type=Path, nargs="+", help="CSVs for the train split, e.g. train_sent_emo.csv")
    m.add_argument("--test", type=Path, nargs="*", default=[], help="CSVs for the test split, e.g. dev_sent_emo.csv")
    m.add_argument("--clips", type=Path, default=None, help="folder of MELD's utterance clips (dia<D>_utt<U>.mp4)")
    m.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    _add_media_options(m)
    m.set_defaults(func=cmd_import_meld)
    g = isub.add_parser("goemotions", help="GoEmotions (Reddit comments, Ekman's six + neutral): the folder of train/dev/test.tsv",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g.add_argument("folder", type=Path)
    g.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    add_extractor_choices(g, ("text",), options=False)
    add_cache_dir(g, TEXT_CACHE_HELP)
    g.set_defaults(func=cmd_import_goemotions)
    r = isub.add_parser("ravdess", help="RAVDESS acted emotional speech: the folder of Actor_*/ clips (emotion in the file name)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                        description="Each clip is extracted like `extract` does (audio; the ASR transcribes the sentence); "
                        "neutral and calm carry no emotion; the --test-actors form the test split.")
    r.add_argument("folder", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True, help="dataset file to write")
    r.add_argument("--test-actors", type=_actors, default=[19, 20], metavar="N,N", help="actors held out as the test split (1..24)")
    _add_media_options(r)
    r.set_defaults(func=cmd_import_ravdess)


def _add_media_options(p) -> None:
    add_extractor_choices(p, options=False)
    p.add_argument("--workers", type=COUNT, default=None, help="extraction worker processes (default: all cores)")
    add_cache_dir(p, "feature cache (default beside the output)")


def cmd_import_meld(args) -> int:
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.importers.corpora import import_meld

    settings = None
    if args.clips is not None:
        settings = ExtractSettings.create(args.text, args.audio_features, args.visual, cache_dir=args.cache_dir)
    ds = import_meld(args.train, args.out, test=args.test, clips=args.clips, text=args.text, cache_dir=args.cache_dir,
                     settings=settings, workers=args.workers, progress=terminal_bar("import", "step"))
    _print_import(args.out, ds)
    return 0


def cmd_import_goemotions(args) -> int:
    from pipeline.importers.corpora import import_goemotions

    ds = import_goemotions(args.folder, args.out, text=args.text, cache_dir=args.cache_dir,
                           progress=terminal_bar("text features", "chunk"))
    _print_import(args.out, ds)
    return 0


def cmd_import_ravdess(args) -> int:
    from data.dataset import load_dataset
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.importers.corpora import import_ravdess

    settings = ExtractSettings.create(args.text, args.audio_features, args.visual, cache_dir=args.cache_dir)
    report = import_ravdess(args.folder, args.out, settings, test_actors=tuple(args.test_actors), workers=args.workers,
                            progress=progress_bar("extract", "clip"))
    _print_import(args.out, load_dataset(report.out))
    for f in report.failures:
        print(f"  failed {f['clip']}: {f['reason']}", file=sys.stderr)
    return 1 if report.failures else 0


def _print_import(out: Path, ds: dict) -> None:
    from data.dataset import presence_counts, split_counts

    counts = split_counts(ds)
    present = presence_counts(ds)
    print(f"wrote {out}: {len(ds['ID'])} conversations, {counts['train'][1] + counts['test'][1]} utterances "
          f"(train {counts['train'][0]} / test {counts['test'][0]} conversations); utterances with "
          + ", ".join(f"{m} {c}" for m, c in present.items()))


def _actors(value: str) -> list[int]:
    """`19,20` -> [19, 20] (argparse type of --test-actors: RAVDESS has actors 1..24)."""
    return int_list(value, Number(int, 1, 24), "19,20")
