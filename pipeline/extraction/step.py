"""The per-clip step of extraction: one clip -> its utterances and one feature row per utterance and modality.

    result = extract_clip("talk.mp4", settings.build(), settings)          # no cache: what predict runs
    outcome = process_clip(settings, "talk.mp4", audio_only=False)         # in a worker: cache, failures as data

`extract_clip` decodes the clip once, places its utterances and runs the extractors. `process_clip` wraps it
for the extraction backends (pipeline.extraction.pool's local processes, pipeline.extraction.ray_tasks's Ray
tasks): it looks the clip up in the per-clip cache (pipeline.extraction.cache) first, computes and stores what is
missing, and turns a clip's failure into data ({"status": "failed", "reason"}) so one bad clip never stops the
others. Both backends run this same function with the settings they are handed, so a cache filled by one is
reused by the other; the extractors are built once per process (ExtractSettings.build).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ExtractionError
from data.dataset import MODALITIES
from extractors.base import NoFeatures, Segment
from pipeline.extraction.cache import cache_path, clip_key, read_cache, store
from pipeline.extraction.settings import ExtractSettings

log = logging.getLogger(__name__)

STAGES = ("decode", "segments", "diarize", "text", "audio", "visual")


# ------------------------------------------------------------------ one clip in a worker
def process_clip(settings: ExtractSettings, clip: str, audio_only: bool, *, threads: int = 0, cache: bool = True) -> dict:
    """Features of one clip with `settings`, from the cache when present (in a worker, or in this process).

    Returns {"status": "ok", "cached": bool, "result": {...}} or {"status": "failed", "reason": str}.
    result: text/audio/visual (n_utt, dim) float32, segments [[start, end, speaker, text, labels]],
    info (transcript, format, timing, automatic_text, asr, named_speakers, diarized, speakers), duration, audio_only,
    no_face, times per stage,
    sha256 of the clip. threads: for ffmpeg and the transcriber (0: all cores; workers that share the cores run 1).
    cache=False computes without reading or writing the cache (the caller keeps it); so does a settings without
    cache_dir.
    """
    try:
        digest, key, transcript = clip_key(clip, audio_only, settings)
        entry = cache_path(settings.cache_dir, key) if cache and settings.cache_dir else None
        cached = read_cache(entry) if entry is not None else None
        if cached is not None:
            return {"status": "ok", "cached": True, "result": cached}
        result = extract_clip(clip, settings.build(), settings, transcript=transcript, audio_only=audio_only, threads=threads)
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
    settings: ExtractSettings,
    *,
    transcript: str | Path | None = None,
    audio_only: bool = False,
    threads: int = 0,
    segments: list[Segment] | None = None,
) -> dict:
    """One clip -> utterance segments and one feature row per utterance and modality (no cache).

    The per-clip step shared by `extract_folder` (in its workers) and `pipeline.prediction.predict`: decode the clip
    once at `settings.fps`, place its utterances (`transcript`, else the transcript beside the clip, else the
    transcriber of `settings.asr`) and label their speakers with `settings.diarize` when the transcript names none
    (splitting an utterance where the speaker changes), unless `segments` are given; then run each extractor of `extractors` (modality ->
    extractor, usually `settings.build()`) over them. threads: for ffmpeg and the transcriber (0: all cores).

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
    media = decode(clip, fps=settings.fps, video=want_video, max_side=max_side, threads=threads)
    times["decode"] = time.perf_counter() - t
    if media.duration <= 0 or media.audio.size == 0:
        raise ExtractionError(f"{clip}: zero length; re-export the clip")
    has_video = media.frames is not None and len(media.frames) > 0
    # audio-only: an audio file, or a "video" whose video stream is missing or decodes to nothing
    audio_only = audio_only or (want_video and not has_video)
    t = time.perf_counter()
    if segments is None:
        segments, info = place_segments(clip, media, transcript, asr=settings.asr, threads=threads)
        times["segments"] = time.perf_counter() - t
        t = time.perf_counter()
        segments = _diarize(media, segments, info, settings)
        times["diarize"] = time.perf_counter() - t
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


def _diarize(media: Any, segments: list[Segment], info: dict, settings: ExtractSettings) -> list[Segment]:
    """The segments with speakers S1..Sn from the settings' diarizer when it applies to this clip (its transcript
    names no speaker); info gains "diarized" (bool) and "speakers" (the count found). A clip in which the
    transcriber found no speech keeps its one empty placeholder utterance, undiarized: there is no voice to label."""
    info["diarized"] = False
    if not settings.diarizes(bool(info.get("named_speakers"))) or not any(s.text.strip() for s in segments):
        return segments
    segments, found = settings.diarizer().diarize(media.audio, segments, media.sample_rate)
    info.update(diarized=True, speakers=int(found["speakers"]))
    return segments


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
