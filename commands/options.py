"""Options that several subcommands take, each declared once here: the extractor choices and their options, the
transcriber, the diarizer, the models, the modalities, Ray, the device and the feature cache.

    add_checkpoint(p, "checkpoint.pt, a run folder, or a folder of runs")
    add_asr(p, default=None)
    add_diarize(p, recorded=True)
    ...
    extractor_paths(args)        # the extractor-specific options given, checked
    runtime_settings(args)       # modality -> settings that rebuild a checkpoint's extractors here
"""

from __future__ import annotations

import argparse
from pathlib import Path

import extractors
from core.errors import UserError
from data.schema import MODALITIES
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.asr import TRANSCRIBERS

# modality -> the flag that chooses its extractor (the values come from the registry)
EXTRACTOR_FLAGS = (
    ("text", "--text", "text extractor"),
    ("audio", "--audio-features", "audio extractor, or an openSMILE feature set"),
    ("visual", "--visual", "visual extractor (none: leave the modality out)"),
)


def extractor_flag(modality: str) -> str:
    return next(flag for m, flag, _ in EXTRACTOR_FLAGS if m == modality)


def add_extractor_choices(p: argparse.ArgumentParser, modalities: tuple[str, ...] = MODALITIES, *, options: bool = True) -> None:
    """--text / --audio-features / --visual for `modalities` (choices and defaults from the extractor registry) and,
    with `options`, the extractor-specific options of those modalities' extractors (--glove, --pyfeat-weights)."""
    for modality, flag, what in EXTRACTOR_FLAGS:
        if modality in modalities:
            p.add_argument(flag, default=extractors.default_choice(modality), choices=extractors.choices(modality), help=what)
    if options:
        for modality, name, opt in extractors.extractor_options():
            if modality in modalities:
                p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; with {extractor_flag(modality)} {name}")


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """The extractor options that do not change features (py-feat's weights folder): what a checkpoint's
    extractors need to be rebuilt on this machine."""
    for modality, name, opt in extractors.extractor_options():
        if opt.runtime:
            p.add_argument(opt.flag, type=Path, default=None, help=f"{opt.help}; for checkpoints trained with {extractor_flag(modality)} {name}")


def extractor_paths(args: argparse.Namespace, runtime_only: bool = False) -> dict[str, Path]:
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


def runtime_settings(args: argparse.Namespace) -> dict[str, dict] | None:
    """modality -> extractor settings given on the command line that do not change features (e.g. py-feat's
    weights folder), to rebuild a checkpoint's extractors on this machine; None when none was given."""
    given = extractor_paths(args, runtime_only=True)
    runtime: dict[str, dict] = {}
    for m, _, opt in extractors.extractor_options():
        if opt.dest in given:
            runtime.setdefault(m, {})[opt.param] = str(given[opt.dest])
    return runtime or None


def add_asr(p: argparse.ArgumentParser, *, recorded: bool) -> None:
    """--asr. recorded: the default is the transcriber the checkpoint's training data was transcribed with
    (predict, serve); otherwise the default transcriber (extract)."""
    if recorded:
        p.add_argument("--asr", default=None, choices=list(TRANSCRIBERS),
                       help="transcriber for clips without a transcript; default: the one the checkpoint's training data was "
                            f"transcribed with ({DEFAULT_ASR} when it recorded none)")
    else:
        p.add_argument("--asr", default=DEFAULT_ASR, choices=list(TRANSCRIBERS),
                       help="transcriber for clips without a transcript (a transcript beside the clip always wins)")


def speaker_count(value: str) -> int:
    """argparse type of --speakers: extractors.diarize.speaker_count, with argparse's message."""
    from extractors.diarize import SPEAKERS_HINT, speaker_count as check

    try:
        return check(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: {SPEAKERS_HINT}") from None


def add_diarize(p: argparse.ArgumentParser, *, recorded: bool) -> None:
    """--diarize auto|on|off and --speakers N. recorded: auto follows what the checkpoint's training data recorded
    (predict, evaluate, serve); otherwise auto diarizes clips whose transcript names no speaker (extract)."""
    from extractors.diarize import DEFAULT_MODE, MODES

    if recorded:
        what = ("who speaks when, for clips whose transcript names no speaker: auto does what the checkpoint's training data "
                "recorded (diarized when it recorded nothing), on/off force it (a warning says when that differs)")
    else:
        what = ("who speaks when (GE2E voices, speakers S1..Sn) for clips whose transcript names no speaker, including every "
                "automatically transcribed clip; a transcript that names speakers always wins. on: as auto, but refuses to run "
                "without the diarizer installed")
    p.add_argument("--diarize", default=DEFAULT_MODE, choices=MODES, help=what)
    p.add_argument("--speakers", type=speaker_count, default=None, metavar="N",
                   help="with diarization: exactly N speakers per clip (default: found from the voices, at most 8)")


def add_checkpoint(p: argparse.ArgumentParser, *, required: bool = False, what: str = "") -> None:
    """--checkpoint: a checkpoint.pt, a run folder or a folder of runs (default: the shipped model)."""
    default = "" if required else "; default: the shipped model in model/pretrained (see its MODEL_CARD.md, or `cli.py info model/pretrained`)"
    p.add_argument("--checkpoint", type=Path, default=None, required=required,
                   help=f"checkpoint.pt, a run folder, or a folder of runs{what}{default}")


def modality_list(value: str) -> list[str]:
    """`text,audio` -> ["text", "audio"] (argparse type of --modalities)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names or any(n not in MODALITIES for n in names):
        raise argparse.ArgumentTypeError(f"{value!r}: give one or more of {','.join(MODALITIES)}, comma-separated")
    return names


def add_modalities(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--modalities", type=modality_list, default=None, metavar="LIST", help=f"use only these modalities, e.g. text,audio: {what}")


def add_ray(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help=f"run on Ray: no ADDRESS starts a Ray instance on this machine, `auto` or HOST:PORT joins a cluster; {what}")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def add_cache_dir(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--cache-dir", type=Path, default=None, help=what)
