"""The per-clip step of extraction: one clip -> its utterances and one feature row per utterance and modality.

    result = extract_clip("talk.mp4", build_extractors(choices))      # no cache: what predict runs
    outcome = process_clip("talk.mp4", audio_only=False)             # in a worker: cache, failures as data

`extract_clip` decodes the clip once, places its utterances and runs the extractors. `process_clip` wraps it
for the extraction backends (pipeline.extract_pool's local processes, pipeline.extract_ray's Ray tasks): it
looks the clip up in the per-clip cache first, computes and stores what is missing, and turns a clip's failure
into data ({"status": "failed", "reason"}) so one bad clip never stops the others. Both backends run this same
function, with the same cache key, so a cache filled by one is reused by the other.

Worker state: `init_worker(settings, ...)` stores the run's settings in this process (`_WORKER`); the
extractors are built on the first clip and kept, so libraries, vectors and models load once per process.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from data.dataset import MODALITIES, PRESENT
from data.errors import ExtractionError, UserError
from data.fileio import atomic_write_bytes, input_file
from extractors.base import NoFeatures, Segment

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: per-utterance presence of each modality
STAGES = ("decode", "segments", "text", "audio", "visual")
THREAD_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")}
_ARRAYS = (*MODALITIES, PRESENT)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def build_extractors(choices: dict[str, tuple[str, dict]]) -> dict[str, Any]:
    """modality -> extractor instance, from the registry (extractors.build_extractor; "none": zero-width)."""
    from extractors import build_extractor

    return {m: build_extractor(m, name, **params) for m, (name, params) in choices.items()}


# ------------------------------------------------------------------ worker state
_WORKER: dict[str, Any] = {}


def init_worker(settings: dict, single_thread: bool, log_level: int) -> None:
    """Per-process set-up: logging, one thread per worker, extractors built once on first use.

    settings: the run's {"choices", "specs", "resources", "fps", "asr", "cache_dir", "factories"} (see
    pipeline.extract.extract_folder); "factories" (modality -> (name, factory)) adds to this process's
    registry the extractors the parent registered at run time.
    """
    if single_thread:
        # One thread per worker, since the workers already fill the cores. The variables are also set in the
        # parent while it spawns workers (see extract_pool), so numpy's BLAS, imported before this runs, obeys.
        os.environ.update(THREAD_ENV)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    from extractors.base import REGISTRY

    # A worker forked from the preload server, spawned, or started by Ray knows only the extractors
    # registered at import; the factories sent along add those registered at run time in the parent.
    for m, (name, factory) in settings.get("factories", {}).items():
        REGISTRY[m].setdefault(name, factory)
    _WORKER.clear()
    _WORKER.update(settings=settings, single_thread=single_thread, builds=0)


def ensure_worker(settings: dict, key: str, log_level: int) -> int:
    """init_worker (single-threaded) unless this process already runs the settings named `key`: a long-lived
    worker (a Ray worker process) keeps its extractors from one clip to the next and rebuilds them only for
    another run's settings. Returns how many times this process built the current extractors so far."""
    if _WORKER.get("key") != key:
        init_worker(settings, True, log_level)
        _WORKER["key"] = key
    return _WORKER.get("builds", 0)


def worker_extractors() -> dict[str, Any]:
    """This process's extractors for the current settings, built on first use."""
    if "extractors" not in _WORKER:
        _WORKER["extractors"] = build_extractors(_WORKER["settings"]["choices"])
        _WORKER["builds"] = _WORKER.get("builds", 0) + 1
    return _WORKER["extractors"]


# ------------------------------------------------------------------ cache
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


def clip_key(clip: str, audio_only: bool, settings: dict) -> tuple[str, str, Path | None]:
    """(clip digest, cache key, transcript path or None) of a clip; ExtractionError when it cannot be read."""
    from extractors.transcripts import find_transcript

    transcript = find_transcript(clip)
    # only regular files are read: a FIFO named like a clip would block this worker forever
    for path, what in ((clip, "clip"), (transcript, "transcript")):
        if path is not None:
            input_file(path, what, error=ExtractionError)
    try:
        digest = file_digest(clip)
        tr_digest = file_digest(transcript) if transcript else None
    except PermissionError as e:
        raise ExtractionError(f"{e.filename or clip}: cannot read (Permission denied); check its permissions") from e
    except FileNotFoundError as e:
        raise ExtractionError(f"{e.filename or clip}: disappeared while the extraction ran; put it back or rerun") from e
    except OSError as e:
        raise ExtractionError(f"{e.filename or clip}: cannot read ({e.strerror or e})") from e
    return digest, cache_key(digest, tr_digest, settings, audio_only), transcript


def cache_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.npz"


def write_cache(path: Path, result: dict) -> None:
    """Store a clip's result (arrays as npz, the rest as JSON), atomically."""
    meta = {k: v for k, v in result.items() if k not in _ARRAYS}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **{k: result[k] for k in _ARRAYS})
    atomic_write_bytes(path, buf.getvalue())


def store(path: Path, result: dict, clip: str) -> None:
    """write_cache, where a failure only costs a recomputation next run (logged)."""
    try:
        write_cache(path, result)
    except (OSError, UserError) as e:
        log.warning("%s: could not write the feature cache (%s); the clip will be recomputed next run", clip, getattr(e, "strerror", None) or e)


def read_cache(path: Path) -> dict | None:
    """A cached result, or None when absent or unreadable (then recomputed, never trusted)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            result = json.loads(str(z["meta"]))
            for m in MODALITIES:
                result[m] = z[m].astype(np.float32)
            result[PRESENT] = z[PRESENT].astype(bool)
        return result
    except FileNotFoundError:
        return None
    except Exception as e:
        log.warning("%s: unreadable cache entry (%s); recomputing", path, e)
        return None


# ------------------------------------------------------------------ one clip in a worker
def process_clip(clip: str, audio_only: bool, cache: bool = True) -> dict:
    """Features of one clip, from the cache when present. Runs inside a worker (uses _WORKER).

    Returns {"status": "ok", "cached": bool, "result": {...}} or {"status": "failed", "reason": str}.
    result: text/audio/visual (n_utt, dim) float32, segments [[start, end, speaker, text, labels]],
    info (transcript, format, timing, automatic_text, asr), duration, audio_only, no_face, times per stage,
    sha256 of the clip. cache=False computes without reading or writing the cache (the caller keeps it).
    """
    settings = _WORKER["settings"]
    try:
        digest, key, transcript = clip_key(clip, audio_only, settings)
        entry = cache_path(settings["cache_dir"], key) if cache else None
        cached = read_cache(entry) if entry is not None else None
        if cached is not None:
            return {"status": "ok", "cached": True, "result": cached}
        result = extract_clip(clip, worker_extractors(), fps=settings["fps"], transcript=transcript, audio_only=audio_only,
                              asr=settings["asr"], threads=1 if _WORKER.get("single_thread") else 0)
        result["sha256"] = digest
        if entry is not None:
            store(entry, result, clip)
        return {"status": "ok", "cached": False, "result": result}
    except ExtractionError as e:
        return {"status": "failed", "reason": str(e)}
    except MemoryError:
        return {"status": "failed", "reason": f"{clip}: out of memory; lower --fps or --workers"}
    except Exception as e:  # one bad clip must not stop the others
        log.debug("unexpected failure on %s", clip, exc_info=True)
        return {"status": "failed", "reason": f"{clip}: unexpected {type(e).__name__}: {e}"}



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
