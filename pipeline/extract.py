"""Extraction: a folder of clips (+ transcripts, + labels.csv) -> one dataset file.

    report = extract_folder("videos/", "dataset.pkl")

For every clip found (recursively: mp4 mov mpg avi mkv webm, and audio-only wav mp3 flac m4a ogg):
decode it once (extractors.media), find its utterances (extractors.transcripts: the transcript beside it,
force-aligned with pocketsphinx when its lines are untimed, or, without one, transcribed by the `asr`
transcriber, Whisper tiny.en by default), run the text, audio and visual extractors over the utterances,
and cache the result. The per-clip step is pipeline.extract_step (process_clip, which predict's extract_clip
sits under); it runs in this machine's worker processes (pipeline.extract_pool) or, with `ray`, as one Ray
task per clip on a cluster (pipeline.extract_ray). Each finished clip is cached in `cache_dir` under a key made of the clip's content hash, its transcript's content hash, the extractor specs, the frame
rate and, for a clip without transcript, the transcriber's spec, written atomically, so a rerun (or a run
restarted after kill -9) only computes what is missing. Labels come from transcript CSVs and `labels.csv`
(pipeline.labels); the split from labels.csv's `split` column, else by hash of (seed, video id) with
`test_ratio`.

A clip that cannot be used (corrupt, empty, no audio stream, unreadable, transcript not UTF-8 or timed past
the clip's end, labels that match no utterance) is a failure: it is logged with its reason, listed in
`failures.json` beside the output, and left out; the other clips are still written. `strict=True` stops
at the first failure instead (raising ClipFailed). A clip with no face is not a failure: its utterances
without a face have no visual modality (`present` False, see data.dataset), and meta counts them; an
audio-only clip has no visual modality at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from data.dataset import MODALITIES, PRESENT, empty_dataset, save_dataset
from data.errors import ExtractionError, UserError
from data.fileio import atomic_path, check_writable, check_writable_folder, file_kind, refuse_overwrite
from data.options import COUNT, FPS, RATIO
from data.progress import Progress
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.base import Segment
from pipeline.extract_pool import run_pool, usable_cores
from pipeline.extract_step import STAGES, build_extractors, resource_fingerprint
from pipeline.labels import LABELS_FILE, label_matrix, read_labels, split_videos

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mpg", ".mpeg", ".avi", ".mkv", ".webm", ".flv")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg")
FAILURES_FILE = "failures.json"


class ClipFailed(ExtractionError):
    """Raised with strict=True at the first clip that fails: `.clip` and `.reason` say which and why."""

    def __init__(self, clip: str, reason: str):
        super().__init__(f"{clip}: {reason}")
        self.clip, self.reason = clip, reason


@dataclass
class ExtractReport:
    """What extract_folder did. `failures`: [{"clip", "reason"}]; stage_seconds: CPU-side seconds per stage
    summed over the clips computed in this run (not cached ones); media_seconds: their total duration."""

    out: Path | None
    failures_path: Path
    clips: int
    videos: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    cached: int = 0
    computed: int = 0
    utterances: int = 0
    train: int = 0
    test: int = 0
    audio_only: list[str] = field(default_factory=list)
    automatic_text: list[str] = field(default_factory=list)
    asr: str = ""  # the label of the transcriber that gave the automatic text, e.g. "whisper tiny.en"
    media_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    backend: str = "local"  # "local", or "ray <address>"
    worker_builds: dict[str, int] = field(default_factory=dict)  # Ray: worker "host:pid" -> times it built the extractors

    @property
    def ok(self) -> bool:
        return not self.failures and self.out is not None


# ------------------------------------------------------------------ discovery
def discover_clips(folder: str | Path, skip: tuple[Path, ...] = (), rejected: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Media files under `folder` (recursive, sorted), skipping hidden folders and the paths in `skip`.

    Only regular files (or links to them) are clips: a named pipe, socket, device or broken link named like a
    clip is left out, since reading it would block or fail; it goes to `rejected` as (path, reason) when a
    list is given, else a warning says so."""
    folder = Path(folder)
    skip = tuple(p.resolve() for p in skip)
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in skip)
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
                path = root_path / name
                why = _not_a_clip(path)
                if why is None:
                    found.append(path)
                elif rejected is not None:
                    rejected.append((path, why))
                else:
                    log.warning("Skipping %s: %s", path, why)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _not_a_clip(path: Path) -> str | None:
    """Why a file named like a clip is not one (None when it is a regular file)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"a symbolic link to {os.readlink(path)}, which does not exist" if path.is_symlink() else "disappeared"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None if stat.S_ISREG(mode) else f"{file_kind(mode)}, not a regular file; only regular files are clips"


def video_ids(folder: str | Path, clips: list[Path]) -> dict[Path, str]:
    """Video id per clip: its path relative to `folder` without suffix (with it when two clips share a stem)."""
    folder = Path(folder)
    stems = [c.relative_to(folder).with_suffix("").as_posix() for c in clips]
    clash = {s for s in stems if stems.count(s) > 1}
    return {c: (c.relative_to(folder).as_posix() if s in clash else s) for c, s in zip(clips, stems)}


# ------------------------------------------------------------------ extractors
def extractor_choices(text: str = "glove", audio: str = "IS09", visual: str = "facemesh", *, fps: float = 5.0,
                      cache_dir: str | Path | None = None, **options: Any) -> dict[str, tuple[str, dict]]:
    """modality -> (registry name, params) from the user's choices and extractor-specific options.

    text, audio, visual: choices of `extractors.choices` (the CLI's --text, --audio-features, --visual: an
    extractor name, a variant such as an openSMILE feature set, or "none" where a modality may be left out).
    options: the registry's extractor-specific options by keyword (`Option.dest`: glove=PATH,
    pyfeat_weights=DIR); None means not given. Visual extractors get the run's `fps` (the rate frames are
    decoded at); extractors that convert resources once get <cache_dir>/<name> when `cache_dir` is given.
    Raises UserError for an unknown choice, or an option given for an extractor that is not chosen.
    """
    from extractors import NONE, entry, extractor_options, resolve

    out: dict[str, tuple[str, dict]] = {}
    for m, choice in (("text", text), ("audio", audio), ("visual", visual)):
        try:
            name, params = resolve(m, choice)
        except ValueError as e:
            raise UserError(str(e)) from e
        if m == "visual" and name != NONE:
            params["fps"] = float(fps)
        if cache_dir is not None and entry(m, name).cache:
            params["cache_dir"] = str(Path(cache_dir) / name)
        out[m] = (name, params)
    known = {o.dest: (m, name, o) for m, name, o in extractor_options()}
    for key, value in options.items():
        if key not in known:
            raise TypeError(f"unknown extractor option {key!r}; expected one of {sorted(known)}")
        if value is None:
            continue
        m, name, o = known[key]
        if out[m][0] != name:
            raise UserError(f"{o.flag} only applies with the {m} extractor {name!r} (chosen: {out[m][0]!r})")
        out[m][1][o.param] = str(value)
    return out


# ------------------------------------------------------------------ the whole folder
def extract_folder(
    folder: str | Path,
    out: str | Path,
    *,
    text: str = "glove",
    audio: str = "IS09",
    visual: str = "facemesh",
    fps: float = 5.0,
    workers: int | None = None,
    test_ratio: float = 0.2,
    seed: int = 0,
    strict: bool = False,
    cache_dir: str | Path | None = None,
    asr: str | dict = DEFAULT_ASR,
    progress: Progress | None = None,
    audio_features: str | None = None,
    choices: dict[str, tuple[str, dict]] | None = None,
    all_test: bool = False,
    ray: str | None = None,
    ship_clips: bool = False,
    **options: Any,
) -> ExtractReport:
    """Extract every clip under `folder` into the dataset file `out` (written atomically).

    text, audio, visual: extractor choices (`extractors.choices`; `audio_features` is the same as `audio`,
    under the CLI's name); options: the registry's extractor-specific options by keyword (glove=PATH,
    pyfeat_weights=DIR), see extractor_choices. `choices` instead gives modality -> (registry name, params)
    directly, e.g. from a checkpoint's feature spec (`evaluate` on a folder of clips). `all_test` puts every
    video without a split in labels.csv in the test split (data a model is scored on, not trained on).
    asr: the transcriber (a name in extractors.asr.TRANSCRIBERS, or a recorded spec) for clips without a
    transcript; its spec is recorded in meta["features"]["asr"], so predict transcribes the same way.

    Returns an ExtractReport; failures.json is written beside `out` in every run (an empty list when all
    clips worked). Raises UserError for bad arguments or a malformed labels.csv, ClipFailed with
    strict=True at the first failing clip, ExtractionError when no clip could be used.
    progress(done, total, **figures) (data.progress.Progress) is called after each clip.
    ray: None runs the clips in this machine's worker processes (`workers` of them); "local" starts a Ray
    instance here, "auto" or "HOST:PORT" joins a Ray cluster, and each clip is one Ray task (pipeline.extract_ray;
    `workers` then caps the clips in flight). The clips and `cache_dir` must then be on a path every node
    sees, unless `ship_clips`: the clips (and transcripts) are sent to the workers and the cache stays here.
    """
    t0 = time.perf_counter()
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass the folder that holds the clips")
    RATIO.check(test_ratio, "--test-ratio")
    FPS.check(fps, "--fps")
    if Path(out).is_dir():  # refuse before hours of extraction, not at the final write
        raise UserError(f"{out}: is a folder; pass the dataset file to write, e.g. {Path(out) / 'dataset.pkl'}")
    if workers is not None:
        COUNT.check(workers, "--workers")
    if ship_clips and ray is None:
        raise UserError("--ray-ship-clips sends clips to Ray workers; add --ray [ADDRESS], or drop it")
    user_cache_dir = cache_dir
    cache_dir = Path(cache_dir) if cache_dir is not None else out.resolve().parent / ".cache" / "extract"
    failures_path = out.with_name(FAILURES_FILE)
    # every output location, before any clip is decoded: the dataset, failures.json beside it, the cache
    check_writable(out, "-o")
    check_writable(failures_path, "-o's failures.json")
    check_writable_folder(cache_dir, "--cache-dir")

    rejected: list[tuple[Path, str]] = []
    clips = discover_clips(folder, skip=(cache_dir,), rejected=rejected)
    if not clips and not rejected:
        raise UserError(f"{folder}: no clips found (looked for {' '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)})")
    inputs = [*clips, *(p for p, _ in rejected), *_files_beside(clips), folder / LABELS_FILE,
              *(Path(v) for v in options.values() if v is not None)]
    refuse_overwrite(out, inputs, "-o")
    refuse_overwrite(failures_path, inputs, "-o's failures.json")
    if rejected:
        refused = [{"clip": p.relative_to(folder).as_posix(), "reason": why} for p, why in rejected]
        for f in refused:
            log.warning("Skipping %s due to %s", f["clip"], f["reason"])
        if strict or not clips:
            _write_failures(failures_path, refused)
            if strict:
                raise ClipFailed(refused[0]["clip"], refused[0]["reason"])
            raise ExtractionError(f"{folder}: none of the {len(rejected)} clips could be used; see {failures_path}")
    ids = video_ids(folder, clips)
    spellings = {**{c.relative_to(folder).as_posix(): v for c, v in ids.items()}, **{v: v for v in ids.values()}}
    labels = read_labels(folder, spellings)

    # Resources an extractor converts once (a --glove file) go to the user's --cache-dir when given, else to
    # the extractor's own per-user cache, so a large vector file is converted once for all outputs.
    resource_cache = Path(cache_dir) if user_cache_dir is not None else None
    if choices is None:
        choices = extractor_choices(text, audio_features or audio, visual, fps=fps, cache_dir=resource_cache, **options)
    extractors = build_extractors(choices)  # fails fast on a bad choice, before any clip runs
    from extractors import asr as transcribers
    from extractors.base import REGISTRY, spec_of

    try:
        # fails fast too; workers load the model itself
        transcriber = transcribers.transcriber_from_spec(asr, source=folder) if isinstance(asr, dict) else transcribers.build_transcriber(asr)
    except ValueError as e:
        raise UserError(str(e)) from e
    specs = {m: spec_of(ex) for m, ex in extractors.items()}
    factories = {m: (name, REGISTRY[m][name]) for m, (name, _) in choices.items() if name in REGISTRY[m]}
    settings = {"choices": choices, "specs": specs, "resources": resource_fingerprint(specs), "fps": float(fps),
                "asr": transcribers.spec_of(transcriber), "cache_dir": str(cache_dir), "factories": factories}
    jobs = [(str(c), c.suffix.lower() in AUDIO_SUFFIXES) for c in clips]
    report = ExtractReport(out=None, failures_path=failures_path, clips=len(clips) + len(rejected), asr=transcriber.label)
    report.failures += [{"clip": p.relative_to(folder).as_posix(), "reason": why} for p, why in rejected]
    results: dict[str, dict] = {}
    stage = {s: 0.0 for s in STAGES}
    names = [c.relative_to(folder).as_posix() for c in clips]

    def on_result(i: int, outcome: dict) -> bool:
        name, vid = names[i], ids[clips[i]]
        if outcome["status"] == "ok":
            res = outcome["result"]
            try:
                res["labels"] = label_matrix(_segments(res), labels.rows.get(vid, []), str(labels.path or LABELS_FILE))
            except ExtractionError as e:
                outcome = {"status": "failed", "reason": f"{name}: {e}"}
        if outcome["status"] == "ok":
            results[vid] = res
            if outcome["cached"]:
                report.cached += 1
            else:
                report.computed += 1
                report.media_seconds += res["duration"]
                for s, v in res["times"].items():
                    stage[s] = stage.get(s, 0.0) + v
        else:
            reason = outcome["reason"]
            log.warning("Skipping %s due to %s", name, reason)
            report.failures.append({"clip": name, "reason": reason})
        if progress is not None:
            progress(len(results) + len(report.failures), report.clips, failed=len(report.failures), cached=report.cached)
        return not (strict and report.failures)

    with contextlib.ExitStack() as stack:
        if ray is not None:  # joined (or started) before the progress bar: an unreachable cluster is one line
            from pipeline.cluster import ray_cluster

            cluster = stack.enter_context(ray_cluster(ray, num_cpus=workers))
        if progress is not None:  # show the bar (and its clip count) while the workers start
            progress(len(rejected), report.clips, failed=len(rejected), cached=0)
        if ray is None:
            run_pool(jobs, settings, usable_cores() if workers is None else int(workers), on_result)
        else:
            from pipeline.extract_ray import run_ray

            report.backend = f"ray {ray}"
            report.worker_builds = run_ray(jobs, settings, on_result, cluster, ship=ship_clips, workers=workers)
    report.stage_seconds = stage
    report.failures.sort(key=lambda f: f["clip"])
    _write_failures(failures_path, report.failures)
    if strict and report.failures:
        first = report.failures[0]
        raise ClipFailed(first["clip"], first["reason"])
    if not results:
        raise ExtractionError(f"{folder}: none of the {report.clips} clips could be used; see {failures_path}")

    vids = [ids[c] for c in clips if ids[c] in results]
    ds = _assemble(vids, results, {**specs, "asr": settings["asr"]}, folder, clips, ids, labels, test_ratio, seed, fps, all_test)
    ds["meta"]["failures"] = list(report.failures)
    save_dataset(ds, out)
    report.out = out
    report.videos = vids
    report.utterances = sum(len(ds["speakers"][v]) for v in vids)
    report.train, report.test = len(ds["train"]), len(ds["test"])
    report.audio_only = list(ds["meta"]["audio_only"])
    report.automatic_text = list(ds["meta"]["automatic_text"])
    report.wall_seconds = time.perf_counter() - t0
    log.debug("wrote %s: %d videos, %d utterances (%d cached, %d computed, %d failed)", out, len(vids), report.utterances, report.cached, report.computed, len(report.failures))
    return report


def _files_beside(clips: list[Path]) -> list[Path]:
    """Every transcript candidate beside the clips that exists (inputs an output must not replace)."""
    from extractors.transcripts import TRANSCRIPT_SUFFIXES

    out = []
    for c in clips:
        for suffix in TRANSCRIPT_SUFFIXES:
            out += [p for p in (c.with_suffix(suffix), c.with_suffix(suffix.upper())) if os.path.lexists(p)]
    return out


def _segments(result: dict) -> list[Segment]:
    return [Segment(float(a), float(b), str(sp), str(tx), dict(lb)) for a, b, sp, tx, lb in result["segments"]]


def _write_failures(path: Path, failures: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(failures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _assemble(vids: list[str], results: dict, specs: dict, folder: Path, clips: list[Path], ids: dict, labels, test_ratio: float, seed: int,
              fps: float, all_test: bool = False) -> dict:
    """The dataset dict of data/dataset.py from the per-clip results. specs: modality -> extractor spec, and
    "asr" -> the transcriber's spec; meta["automatic_text"] maps each transcribed video to the transcriber's label."""
    files = {ids[c]: c.relative_to(folder).as_posix() for c in clips}
    provenance = {
        "tool": "cli.py extract", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "folder": str(folder.resolve()), "fps": float(fps), "labels_file": str(labels.path) if labels.path else None,
        "split": "labels.csv split column, others by test_ratio" if labels.splits else "test_ratio",
        "test_ratio": float(test_ratio), "seed": int(seed), "clips": {},
    }
    ds = empty_dataset(features=specs, provenance=provenance)
    ds["meta"].update(automatic_text={}, audio_only=[], no_face={})
    for vid in vids:
        res = results[vid]
        segs = res["segments"]
        ds["ID"].append(vid)
        ds["speakers"][vid] = [str(s[2]) for s in segs]
        ds["sentence_in_text"][vid] = [str(s[3]) for s in segs]
        ds["labels"][vid] = np.asarray(res["labels"], dtype=np.float32)
        for m in MODALITIES:
            ds[f"{m}_feat"][vid] = res[m]
        ds[PRESENT][vid] = np.asarray(res[PRESENT], dtype=bool)
        ds["meta"]["timings"][vid] = [[float(s[0]), float(s[1])] for s in segs]
        info = res["info"]
        provenance["clips"][vid] = {
            "file": files[vid], "sha256": res.get("sha256"), "duration": float(res["duration"]),
            "transcript": info.get("transcript"), "timing": info.get("timing"),
        }
        if info.get("automatic_text"):
            ds["meta"]["automatic_text"][vid] = str(info.get("asr") or "unknown")
        if res["audio_only"]:
            ds["meta"]["audio_only"].append(vid)
        if res.get("no_face"):
            ds["meta"]["no_face"][vid] = int(res["no_face"])
    if all_test:
        ds["train"] = [v for v in vids if labels.splits.get(v) == "train"]
        ds["test"] = [v for v in vids if labels.splits.get(v) != "train"]
    else:
        ds["train"], ds["test"] = split_videos(vids, test_ratio, seed, labels.splits)
    return ds
