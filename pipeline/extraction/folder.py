"""Extraction: a folder of clips (+ transcripts, + labels.csv) -> one dataset file.

    report = extract_folder("videos/", "dataset.pkl", ExtractSettings.create(text="minilm"))

For every clip found (recursively: pipeline.extraction.clips): decode it once (extractors.media), find its
utterances (extractors.transcripts: the transcript beside it, force-aligned with pocketsphinx when its lines are
untimed, or, without one, transcribed by the settings' transcriber, Whisper tiny.en by default), run the text,
audio and visual extractors over the utterances, and cache the result. The per-clip step is
pipeline.extraction.step.process_clip; it runs in this machine's worker processes (pipeline.extraction.pool) or,
with `ray`, as one Ray task per clip on a cluster (pipeline.extraction.ray_tasks). Each finished clip is cached
under a key of everything that changes its result (pipeline.extraction.cache), so a rerun (or a run restarted
after kill -9) only computes what is missing. Labels come from transcript CSVs and `labels.csv`
(pipeline.extraction.labels); the split from labels.csv's `split` column, else by hash of (seed, video id) with
`test_ratio` (data.splits).

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
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.errors import ExtractionError, UserError
from core.fileio import atomic_path, check_writable, check_writable_folder, refuse_overwrite
from core.options import COUNT, RATIO
from core.progress import Progress
from data.dataset import MODALITIES, PRESENT, empty_dataset, save_dataset
from data.splits import split_videos
from extractors.base import Segment
from extractors.media import AUDIO_SUFFIXES, CLIP_SUFFIXES
from pipeline.extraction.clips import discover_clips, files_beside, video_ids
from pipeline.extraction.labels import LABELS_FILE, LabelTable, label_matrix, read_labels
from pipeline.extraction.pool import run_pool, usable_cores
from pipeline.extraction.settings import ExtractSettings
from pipeline.extraction.step import STAGES

log = logging.getLogger(__name__)

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
    diarized: dict[str, int] = field(default_factory=dict)  # video id -> speakers the diarizer found
    media_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    backend: str = "local"  # "local", or "ray <address>"
    worker_builds: dict[str, int] = field(default_factory=dict)  # Ray: worker "host:pid" -> times it built the extractors

    @property
    def ok(self) -> bool:
        return not self.failures and self.out is not None


def extract_folder(folder: str | Path, out: str | Path, settings: ExtractSettings | None = None, *, workers: int | None = None,
                   test_ratio: float = 0.2, seed: int = 0, strict: bool = False, all_test: bool = False, ray: str | None = None,
                   ship_clips: bool = False, progress: Progress | None = None) -> ExtractReport:
    """Extract every clip under `folder` into the dataset file `out` (written atomically).

    settings: the extractors, frame rate, transcriber, diarizer and cache (None: the defaults, ExtractSettings.create());
    a settings without cache_dir caches in .cache/extract beside `out`. The transcriber's spec is recorded in
    meta["features"]["asr"] and the diarizer's in meta["features"]["diarize"], so predict transcribes and diarizes
    the same way. `all_test` puts every video without a split in
    labels.csv in the test split (data a model is scored on, not trained on).

    Returns an ExtractReport; failures.json is written beside `out` in every run (an empty list when all
    clips worked). Raises UserError for bad arguments or a malformed labels.csv, ClipFailed with
    strict=True at the first failing clip, ExtractionError when no clip could be used.
    progress(done, total, **figures) (core.progress.Progress) is called after each clip.
    ray: None runs the clips in this machine's worker processes (`workers` of them); "local" starts a Ray
    instance here, "auto" or "HOST:PORT" joins a Ray cluster, and each clip is one Ray task (pipeline.extraction.ray_tasks;
    `workers` then caps the clips in flight). The clips and the cache must then be on a path every node
    sees, unless `ship_clips`: the clips (and transcripts) are sent to the workers and the cache stays here.
    """
    t0 = time.perf_counter()
    folder, out = Path(folder), Path(out)
    settings = settings or ExtractSettings.create()
    if settings.cache_dir is None:
        settings = settings.with_cache(out.resolve().parent / ".cache" / "extract")
    _check_arguments(folder, out, settings, workers, test_ratio, ray, ship_clips)
    failures_path = out.with_name(FAILURES_FILE)
    clips, rejected = _find_clips(folder, out, failures_path, settings)
    ids = video_ids(folder, clips)
    spellings = {**{c.relative_to(folder).as_posix(): v for c, v in ids.items()}, **{v: v for v in ids.values()}}
    labels = read_labels(folder, spellings)

    report = ExtractReport(out=None, failures_path=failures_path, clips=len(clips) + len(rejected), asr=settings.transcriber().label)
    report.failures += rejected
    if rejected and (strict or not clips):
        _write_failures(failures_path, report.failures)
        if strict:
            raise ClipFailed(rejected[0]["clip"], rejected[0]["reason"])
        raise ExtractionError(f"{folder}: none of the {len(rejected)} clips could be used; see {failures_path}")
    tally = _Tally(report, [c.relative_to(folder).as_posix() for c in clips], [ids[c] for c in clips], labels, strict, progress)
    jobs = [(str(c), c.suffix.lower() in AUDIO_SUFFIXES) for c in clips]
    _run(jobs, settings, tally, workers, ray, ship_clips)

    report.failures.sort(key=lambda f: f["clip"])
    _write_failures(failures_path, report.failures)
    if strict and report.failures:
        raise ClipFailed(report.failures[0]["clip"], report.failures[0]["reason"])
    if not tally.results:
        raise ExtractionError(f"{folder}: none of the {report.clips} clips could be used; see {failures_path}")
    vids = [ids[c] for c in clips if ids[c] in tally.results]
    ds = _assemble(vids, tally.results, {**settings.specs, "asr": settings.asr, "diarize": settings.diarize}, folder, clips, ids, labels, test_ratio, seed,
                   settings.fps, all_test)
    ds["meta"]["failures"] = list(report.failures)
    save_dataset(ds, out)
    report.out, report.videos = out, vids
    report.utterances = sum(len(ds["speakers"][v]) for v in vids)
    report.train, report.test = len(ds["train"]), len(ds["test"])
    report.audio_only = list(ds["meta"]["audio_only"])
    report.automatic_text = list(ds["meta"]["automatic_text"])
    report.diarized = dict(ds["meta"]["diarized"])
    report.wall_seconds = time.perf_counter() - t0
    log.debug("wrote %s: %d videos, %d utterances (%d cached, %d computed, %d failed)", out, len(vids), report.utterances,
              report.cached, report.computed, len(report.failures))
    return report


def _check_arguments(folder: Path, out: Path, settings: ExtractSettings, workers: int | None, test_ratio: float, ray: str | None,
                     ship_clips: bool) -> None:
    """Refuse bad arguments and unwritable outputs before any clip is decoded."""
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass the folder that holds the clips")
    RATIO.check(test_ratio, "--test-ratio")
    if out.is_dir():  # refuse before hours of extraction, not at the final write
        raise UserError(f"{out}: is a folder; pass the dataset file to write, e.g. {out / 'dataset.pkl'}")
    if workers is not None:
        COUNT.check(workers, "--workers")
    if ship_clips and ray is None:
        raise UserError("--ray-ship-clips sends clips to Ray workers; add --ray [ADDRESS], or drop it")
    # every output location: the dataset, failures.json beside it, the cache
    check_writable(out, "-o")
    check_writable(out.with_name(FAILURES_FILE), "-o's failures.json")
    check_writable_folder(Path(settings.cache_dir), "--cache-dir")


def _find_clips(folder: Path, out: Path, failures_path: Path, settings: ExtractSettings) -> tuple[list[Path], list[dict]]:
    """(clips, rejected [{"clip", "reason"}]) under `folder`; UserError when there are none, or when an output
    would replace one of the inputs (a clip, a transcript, labels.csv, a file an extractor reads)."""
    rejected: list[tuple[Path, str]] = []
    clips = discover_clips(folder, skip=(Path(settings.cache_dir),), rejected=rejected)
    if not clips and not rejected:
        raise UserError(f"{folder}: no clips found (looked for {' '.join(CLIP_SUFFIXES)})")
    inputs = [*clips, *(p for p, _ in rejected), *files_beside(clips), folder / LABELS_FILE,
              *(Path(r[0]) for r in settings.resources.values())]
    refuse_overwrite(out, inputs, "-o")
    refuse_overwrite(failures_path, inputs, "-o's failures.json")
    refused = [{"clip": p.relative_to(folder).as_posix(), "reason": why} for p, why in rejected]
    for f in refused:
        log.warning("Skipping %s due to %s", f["clip"], f["reason"])
    return clips, refused


class _Tally:
    """Collects each clip's outcome as a backend delivers it: results by video id (with their labels), failures
    and counts in the report, the progress hook called. Calling it returns False to stop (strict and failed)."""

    def __init__(self, report: ExtractReport, names: list[str], vids: list[str], labels: LabelTable, strict: bool,
                 progress: Progress | None):
        self.report, self.names, self.vids, self.labels, self.strict, self.progress = report, names, vids, labels, strict, progress
        self.results: dict[str, dict] = {}
        report.stage_seconds = {s: 0.0 for s in STAGES}

    def start(self) -> None:
        """Show the clip count (and the clips refused already) while the workers start."""
        if self.progress is not None:
            done = len(self.report.failures)
            self.progress(done, self.report.clips, failed=done, cached=0)

    def __call__(self, i: int, outcome: dict) -> bool:
        report, name, vid = self.report, self.names[i], self.vids[i]
        if outcome["status"] == "ok":
            res = outcome["result"]
            try:
                res["labels"] = label_matrix(_segments(res), self.labels.rows.get(vid, []), str(self.labels.path or LABELS_FILE))
            except ExtractionError as e:
                outcome = {"status": "failed", "reason": f"{name}: {e}"}
        if outcome["status"] == "ok":
            self.results[vid] = res
            if outcome["cached"]:
                report.cached += 1
            else:
                report.computed += 1
                report.media_seconds += res["duration"]
                for s, v in res["times"].items():
                    report.stage_seconds[s] = report.stage_seconds.get(s, 0.0) + v
        else:
            log.warning("Skipping %s due to %s", name, outcome["reason"])
            report.failures.append({"clip": name, "reason": outcome["reason"]})
        if self.progress is not None:
            self.progress(len(self.results) + len(report.failures), report.clips, failed=len(report.failures), cached=report.cached)
        return not (self.strict and report.failures)


def _run(jobs: list[tuple[str, bool]], settings: ExtractSettings, tally: _Tally, workers: int | None, ray: str | None,
         ship_clips: bool) -> None:
    """The clips through this machine's worker processes, or as Ray tasks."""
    with contextlib.ExitStack() as stack:
        if ray is not None:  # joined (or started) before the progress bar: an unreachable cluster is one line
            from pipeline.cluster import ray_cluster

            cluster = stack.enter_context(ray_cluster(ray, num_cpus=workers))
        tally.start()
        if ray is None:
            run_pool(jobs, settings, usable_cores() if workers is None else int(workers), tally)
        else:
            from pipeline.extraction.ray_tasks import run_ray

            tally.report.backend = f"ray {ray}"
            tally.report.worker_builds = run_ray(jobs, settings, tally, cluster, ship=ship_clips, workers=workers)


def _segments(result: dict) -> list[Segment]:
    return [Segment(float(a), float(b), str(sp), str(tx), dict(lb)) for a, b, sp, tx, lb in result["segments"]]


def _write_failures(path: Path, failures: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(failures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _assemble(vids: list[str], results: dict, specs: dict, folder: Path, clips: list[Path], ids: dict, labels: LabelTable,
              test_ratio: float, seed: int,
              fps: float, all_test: bool = False) -> dict:
    """The dataset dict (data.schema) from the per-clip results. specs: modality -> extractor spec, and
    "asr" -> the transcriber's spec, "diarize" -> the diarizer's; meta["automatic_text"] maps each transcribed video to
    the transcriber's label, meta["diarized"] each diarized video to the number of speakers found."""
    files = {ids[c]: c.relative_to(folder).as_posix() for c in clips}
    provenance = {
        "tool": "cli.py extract", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "folder": str(folder.resolve()), "fps": float(fps), "labels_file": str(labels.path) if labels.path else None,
        "split": "labels.csv split column, others by test_ratio" if labels.splits else "test_ratio",
        "test_ratio": float(test_ratio), "seed": int(seed), "clips": {},
    }
    ds = empty_dataset(features=specs, provenance=provenance)
    ds["meta"].update(automatic_text={}, audio_only=[], no_face={}, diarized={})
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
        if info.get("diarized"):
            ds["meta"]["diarized"][vid] = int(info.get("speakers") or 0)
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
