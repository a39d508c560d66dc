"""Extraction: a folder of clips (+ transcripts, + labels.csv) -> one dataset file.

    report = extract_folder("videos/", "dataset.pkl")

For every clip found (recursively: mp4 mov mpg avi mkv webm, and audio-only wav mp3 flac m4a ogg):
decode it once (extractors.media), find its utterances (extractors.transcripts: the transcript beside it,
force-aligned with pocketsphinx when its lines are untimed, or, without one, transcribed by the `asr`
transcriber, Whisper tiny.en by default), run the text, audio and visual extractors over the utterances,
and cache the result. Clips run in parallel worker processes; each finished clip is cached in `cache_dir`
under a key made of the clip's content hash, its transcript's content hash, the extractor specs, the frame
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
import hashlib
import io
import json
import logging
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from data.dataset import MODALITIES, PRESENT, empty_dataset, save_dataset
from data.errors import ExtractionError, UserError
from data.fileio import atomic_path, atomic_write_bytes
from extractors.asr import DEFAULT as DEFAULT_ASR
from extractors.base import NoFeatures, Segment  # NoFeatures: still importable from here
from pipeline.labels import LABELS_FILE, label_matrix, read_labels, split_videos

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mpg", ".mpeg", ".avi", ".mkv", ".webm", ".flv")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg")
CACHE_VERSION = 2  # 2: per-utterance presence of each modality
FAILURES_FILE = "failures.json"
STAGES = ("decode", "segments", "text", "audio", "visual")
Progress = Callable[..., None]


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

    @property
    def ok(self) -> bool:
        return not self.failures and self.out is not None


# ------------------------------------------------------------------ discovery
def discover_clips(folder: str | Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Media files under `folder` (recursive, sorted), skipping hidden folders and the paths in `skip`."""
    folder = Path(folder)
    skip = tuple(p.resolve() for p in skip)
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in skip)
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
                found.append(root_path / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def video_ids(folder: str | Path, clips: list[Path]) -> dict[Path, str]:
    """Video id per clip: its path relative to `folder` without suffix (with it when two clips share a stem)."""
    folder = Path(folder)
    stems = [c.relative_to(folder).with_suffix("").as_posix() for c in clips]
    clash = {s for s in stems if stems.count(s) > 1}
    return {c: (c.relative_to(folder).as_posix() if s in clash else s) for c, s in zip(clips, stems)}


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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


def build_extractors(choices: dict[str, tuple[str, dict]]) -> dict[str, Any]:
    """modality -> extractor instance, from the registry (extractors.build_extractor; "none": zero-width)."""
    from extractors import build_extractor

    return {m: build_extractor(m, name, **params) for m, (name, params) in choices.items()}


# ------------------------------------------------------------------ one clip (runs in a worker)
_WORKER: dict[str, Any] = {}
_THREAD_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")}


@contextlib.contextmanager
def _thread_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Set _THREAD_ENV (and `extra`) in this process while worker processes start (they inherit it), then restore."""
    env = {**_THREAD_ENV, **(extra or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker(settings: dict, single_thread: bool, log_level: int) -> None:
    """Per-process set-up: logging, one thread per worker, extractors built once on first use."""
    if single_thread:
        # One thread per worker, since the workers already fill the cores. The variables are also set in the
        # parent while it spawns workers (see _thread_env), so numpy's BLAS, imported before this runs, obeys.
        os.environ.update(_THREAD_ENV)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    from extractors.base import REGISTRY

    # A worker forked from the preload server or spawned knows only the extractors registered at import;
    # the factories sent along add those registered at run time in the parent.
    for m, (name, factory) in settings.get("factories", {}).items():
        REGISTRY[m].setdefault(name, factory)
    _WORKER.clear()
    _WORKER.update(settings=settings, single_thread=single_thread)


def _worker_extractors() -> dict[str, Any]:
    if "extractors" not in _WORKER:
        _WORKER["extractors"] = build_extractors(_WORKER["settings"]["choices"])
    return _WORKER["extractors"]


def resource_fingerprint(specs: dict[str, dict]) -> dict[str, list]:
    """Path, size and mtime of files the extractors read (a --glove file): a file replaced in place under
    the same name changes the cache key, so stale features are not reused."""
    out = {}
    for modality, spec in specs.items():
        path = (spec.get("params") or {}).get("path")
        if path and Path(path).is_file():
            st = Path(path).stat()
            out[modality] = [str(path), st.st_size, st.st_mtime_ns]
    return out


def cache_key(clip_digest: str, transcript_digest: str | None, settings: dict, audio_only: bool) -> str:
    """sha256 over everything that changes a clip's cached result.

    The transcriber's spec counts only for a clip without transcript: untimed lines are aligned by
    pocketsphinx whatever `--asr` says. Clips with a transcript hash an empty spec, as before transcribers
    had specs, so their cache entries stay valid.
    """
    payload = {
        "version": CACHE_VERSION, "clip": clip_digest, "transcript": transcript_digest, "specs": settings["specs"],
        "resources": settings.get("resources", {}), "fps": settings["fps"],
        "asr": settings["asr"] if transcript_digest is None else {}, "audio_only": audio_only,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _cache_path(cache_dir: str, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.npz"


_ARRAYS = (*MODALITIES, PRESENT)


def _write_cache(path: Path, result: dict) -> None:
    meta = {k: v for k, v in result.items() if k not in _ARRAYS}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **{k: result[k] for k in _ARRAYS})
    atomic_write_bytes(path, buf.getvalue())


def _read_cache(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            result = json.loads(str(z["meta"]))
            for m in MODALITIES:
                result[m] = z[m].astype(np.float32)
            result[PRESENT] = z[PRESENT].astype(bool)
        return result
    except FileNotFoundError:
        return None
    except Exception as e:  # a cache file that does not load is recomputed, never trusted
        log.warning("%s: unreadable cache entry (%s); recomputing", path, e)
        return None


def process_clip(clip: str, audio_only: bool) -> dict:
    """Features of one clip, from the cache when present. Runs inside a worker (uses _WORKER).

    Returns {"status": "ok", "cached": bool, "result": {...}} or {"status": "failed", "reason": str}.
    result: text/audio/visual (n_utt, dim) float32, segments [[start, end, speaker, text, labels]],
    info (transcript, format, timing, automatic_text, asr), duration, audio_only, no_face, times per stage.
    """
    settings = _WORKER["settings"]
    try:
        from extractors.transcripts import find_transcript

        transcript = find_transcript(clip)
        try:
            digest = file_digest(clip)
            tr_digest = file_digest(transcript) if transcript else None
        except OSError as e:
            raise ExtractionError(f"{clip}: cannot read ({e.strerror or e}); check its permissions") from e
        key = cache_key(digest, tr_digest, settings, audio_only)
        cache_file = _cache_path(settings["cache_dir"], key)
        cached = _read_cache(cache_file)
        if cached is not None:
            return {"status": "ok", "cached": True, "result": cached}
        result = _compute(clip, transcript, audio_only, settings)
        result["sha256"] = digest
        try:
            _write_cache(cache_file, result)
        except (OSError, UserError) as e:  # the features are computed; losing the cache only costs a rerun
            log.warning("%s: could not write the feature cache (%s); the clip will be recomputed next run", clip, getattr(e, "strerror", None) or e)
        return {"status": "ok", "cached": False, "result": result}
    except ExtractionError as e:
        return {"status": "failed", "reason": str(e)}
    except MemoryError:
        return {"status": "failed", "reason": f"{clip}: out of memory; lower --fps or --workers"}
    except Exception as e:  # one bad clip must not stop the others
        log.debug("unexpected failure on %s", clip, exc_info=True)
        return {"status": "failed", "reason": f"{clip}: unexpected {type(e).__name__}: {e}"}


def _compute(clip: str, transcript: Path | None, audio_only: bool, settings: dict) -> dict:
    return extract_clip(clip, _worker_extractors(), fps=settings["fps"], transcript=transcript, audio_only=audio_only,
                        asr=settings["asr"], threads=1 if _WORKER.get("single_thread") else 0)


def extract_clip(
    clip: str | Path,
    extractors: dict[str, Any],
    *,
    fps: float = 5.0,
    transcript: str | Path | None = None,
    audio_only: bool = False,
    asr: dict | None = None,
    threads: int = 0,
    segments: list[Segment] | None = None,
) -> dict:
    """One clip -> utterance segments and one feature row per utterance and modality (no cache).

    The per-clip step shared by `extract_folder` (in its workers) and `pipeline.predict`: decode the clip once,
    place its utterances (`transcript`, else the transcript beside the clip, else the transcriber of the spec
    `asr`, None: Whisper tiny.en) unless `segments` are given, then run each extractor of `extractors`
    (modality -> extractor) over them. threads: for ffmpeg and the transcriber (0: all cores).

    Returns {"text"|"audio"|"visual": (n_utt, dim) float32 finite, "present": (n_utt, 3) bool, "segments":
    [[start, end, speaker, text, labels]], "info": {transcript, format, timing, automatic_text, asr}, "duration":
    seconds, "audio_only": bool, "no_face": utterances without a face, "times": seconds per stage (decode,
    segments, text, audio, visual)}. An extractor marks an utterance whose modality is absent (no face, no
    words) with a row of NaN; here that becomes a zero row with `present` False. `extractors` may leave a
    modality out (or give it width 0): it is then absent everywhere.
    Raises ExtractionError (NoAudioError without an audio stream) naming the clip and the fix.
    """
    from extractors.media import DEFAULT_MAX_SIDE, decode
    from extractors.transcripts import place_segments

    clip = str(clip)
    times: dict[str, float] = {}
    t = time.perf_counter()
    visual = extractors.get("visual")
    max_side = getattr(visual, "max_side", DEFAULT_MAX_SIDE)
    # frames are the costly part of decoding: only for a visual extractor that reads them
    want_video = not audio_only and visual is not None and visual.dim > 0 and not isinstance(visual, NoFeatures)
    media = decode(clip, fps=fps, video=want_video, max_side=max_side, threads=threads)
    times["decode"] = time.perf_counter() - t
    if media.duration <= 0 or media.audio.size == 0:
        raise ExtractionError(f"{clip}: zero length; re-export the clip")
    has_video = media.frames is not None and len(media.frames) > 0
    # audio-only: an audio file, or a "video" whose video stream is missing or decodes to nothing
    audio_only = audio_only or (want_video and not has_video)
    t = time.perf_counter()
    if segments is None:
        segments, info = place_segments(clip, media, transcript, asr=asr, threads=threads)
    else:
        info = {"transcript": None, "format": None, "timing": "given", "automatic_text": False, "asr": None}
    times["segments"] = time.perf_counter() - t
    n = len(segments)
    result: dict[str, Any] = {}
    present = np.zeros((n, len(MODALITIES)), dtype=bool)
    for k, m in enumerate(MODALITIES):
        t = time.perf_counter()
        ex = extractors.get(m)
        dim = 0 if ex is None else int(ex.dim)
        if ex is None or (m == "visual" and not has_video):
            feats = np.full((n, dim), np.nan, dtype=np.float32)
        else:
            feats = np.asarray(ex(media, segments), dtype=np.float32)
        if feats.shape != (n, dim):
            raise ExtractionError(f"{clip}: {m} extractor {ex.name} returned shape {feats.shape}, expected ({n}, {dim})")
        result[m], present[:, k] = _presence(feats, clip, m)
        times[m] = time.perf_counter() - t
    no_face = int((~present[:, 2]).sum()) if has_video and want_video else 0
    if no_face:
        log.info("%s: %d of %d utterances without a face (no visual modality there)", Path(clip).name, no_face, n)
    result.update(
        present=present, segments=[[s.start, s.end, s.speaker, s.text, s.labels] for s in segments], info=info,
        duration=media.duration, audio_only=audio_only, no_face=no_face, times=times,
    )
    return result


def _presence(feats: np.ndarray, clip: str, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) rows from an extractor -> (rows with absent ones zeroed, (n,) present). An all-NaN row (or any row
    of a width-0 modality) is absent; other non-finite values are replaced by 0 with a warning."""
    if feats.shape[1] == 0:
        return feats, np.zeros(feats.shape[0], dtype=bool)
    finite = np.isfinite(feats)
    present = ~np.isnan(feats).all(axis=1)
    if not finite[present].all():
        log.warning("%s: %s features had NaN/inf; replaced by 0", clip, modality)
    return np.where(finite, feats, 0.0).astype(np.float32), present


# ------------------------------------------------------------------ running clips
def _run_all(jobs: list[tuple[str, bool]], settings: dict, workers: int, on_result: Callable[[int, dict], bool]) -> None:
    """Run process_clip over `jobs`, calling on_result(index, outcome) as each finishes; it returns False to stop."""
    if workers <= 1:
        _init_worker(settings, False, logging.getLogger().getEffectiveLevel())
        for i, (clip, audio_only) in enumerate(jobs):
            if not on_result(i, process_clip(clip, audio_only)):
                return
        return
    pending = list(range(len(jobs)))
    # Longest files first packs the workers better.
    pending.sort(key=lambda i: -_size(jobs[i][0]))
    ctx = _worker_context(settings)
    for attempt in range(3):
        # The last try gives each clip a pool of its own, so only a clip that kills its worker fails,
        # not the clips that happened to share a pool with it.
        isolate = attempt == 2
        done: set[int] = set()
        for group in ([[i] for i in pending] if isolate else [pending]):
            pool = ProcessPoolExecutor(min(workers, len(group)), mp_context=ctx, initializer=_init_worker,
                                       initargs=(settings, True, logging.getLogger().getEffectiveLevel()))
            with _thread_env(getattr(ctx, "preload_env", None)):  # workers start on the first submissions
                futures = {pool.submit(process_clip, *jobs[i]): i for i in group}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        break
                    done.add(i)
                    if not on_result(i, outcome):
                        return
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        pending = [i for i in pending if i not in done]
        if not pending:
            return
        if attempt < 2:
            log.warning("a worker process died (crash or out of memory); retrying %d clip(s) in a fresh pool", len(pending))
    for i in pending:
        if not on_result(i, {"status": "failed", "reason": f"{jobs[i][0]}: a worker process died on it repeatedly (crash or out of memory)"}):
            return


def _worker_context(settings: dict) -> multiprocessing.context.BaseContext:
    """Workers fork from a clean single-threaded server that has the heavy libraries and the text vectors
    loaded (pipeline._preload): they start in a fraction of a second and share those pages. Forking this
    process instead could deadlock once torch or mediapipe run threads here; where forkserver does not
    exist (Windows, macOS defaults aside), workers are spawned and load everything themselves."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from pipeline._preload import ENV

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline._preload"])
    # read by the server when it starts (first pool of this process); later pools reuse the warm server
    ctx.preload_env = {ENV: json.dumps({"text": settings["choices"]["text"]}, default=str)}  # type: ignore[attr-defined]
    return ctx


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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
    progress(done, total, **postfix) is called after each clip.
    """
    t0 = time.perf_counter()
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass the folder that holds the clips")
    if not 0 <= test_ratio < 1:
        raise UserError(f"test_ratio {test_ratio}: must be in [0, 1)")
    if fps <= 0:
        raise UserError(f"fps {fps}: must be > 0")
    if Path(out).is_dir():  # refuse before hours of extraction, not at the final write
        raise UserError(f"{out}: is a folder; pass the dataset file to write, e.g. {Path(out) / 'dataset.pkl'}")
    workers = _usable_cores() if workers is None else int(workers)
    if workers < 1:
        raise UserError(f"workers {workers}: must be >= 1")
    user_cache_dir = cache_dir
    cache_dir = Path(cache_dir) if cache_dir is not None else out.resolve().parent / ".cache" / "extract"
    failures_path = out.with_name(FAILURES_FILE)

    clips = discover_clips(folder, skip=(cache_dir,))
    if not clips:
        raise UserError(f"{folder}: no clips found (looked for {' '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)})")
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
    report = ExtractReport(out=None, failures_path=failures_path, clips=len(clips), asr=transcriber.label)
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
            progress(len(results) + len(report.failures), len(clips), failed=len(report.failures), cached=report.cached)
        return not (strict and report.failures)

    if progress is not None:  # show the bar (and its clip count) while the workers start
        progress(0, len(clips), failed=0, cached=0)
    _run_all(jobs, settings, workers, on_result)
    report.stage_seconds = stage
    report.failures.sort(key=lambda f: f["clip"])
    _write_failures(failures_path, report.failures)
    if strict and report.failures:
        first = report.failures[0]
        raise ClipFailed(first["clip"], first["reason"])
    if not results:
        raise ExtractionError(f"{folder}: none of the {len(clips)} clips could be used; see {failures_path}")

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
