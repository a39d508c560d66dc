"""The per-clip feature cache: one npz per clip under a key of everything that changes its result, written
atomically, so a rerun (or a run restarted after kill -9) computes only what is missing, and a cache filled by
one backend (local workers, Ray) serves the other.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from core.errors import ExtractionError, UserError
from core.fileio import atomic_write_bytes, input_file
from data.dataset import MODALITIES, PRESENT
from pipeline.extraction.settings import ExtractSettings

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: per-utterance presence of each modality
_ARRAYS = (*MODALITIES, PRESENT)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_key(clip_digest: str, transcript_digest: str | None, settings: ExtractSettings, audio_only: bool,
              diarized: bool = False) -> str:
    """sha256 over everything that changes a clip's cached result.

    The transcriber's spec counts only for a clip without transcript: untimed lines are aligned by
    pocketsphinx whatever `--asr` says. Clips with a transcript hash an empty spec, as before transcribers
    had specs, so their cache entries stay valid. The diarizer's spec counts only for a clip it `diarized`
    (settings.diarizes): with --diarize off, or a transcript that names its speakers, the key is what it was
    before diarization existed.
    """
    payload = {
        "version": CACHE_VERSION, "clip": clip_digest, "transcript": transcript_digest, "specs": settings.specs,
        "resources": settings.resources, "fps": settings.fps,
        "asr": settings.asr if transcript_digest is None else {}, "audio_only": audio_only,
    }
    if diarized:
        payload["diarize"] = settings.diarize
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def clip_key(clip: str, audio_only: bool, settings: ExtractSettings) -> tuple[str, str, Path | None]:
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
    return digest, cache_key(digest, tr_digest, settings, audio_only, settings.diarizes(names_speakers(transcript, settings))), transcript


def names_speakers(transcript: Path | None, settings: ExtractSettings) -> bool:
    """Whether the clip's transcript names speakers (parsed only when a diarizer is on: it decides the cache key);
    a transcript that cannot be parsed raises ExtractionError here, as it would when the clip is extracted."""
    from extractors.diarize import is_active
    from extractors.transcripts import read_transcript

    return transcript is not None and is_active(settings.diarize) and read_transcript(transcript).named_speakers


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
