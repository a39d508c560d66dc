"""Offline speech recognition with pocketsphinx 5 (its US-English model ships in the wheel; BSD-2-Clause).

The forced aligner of untimed transcript lines (whatever the transcriber: it measured better than Whisper's
word timestamps, see bench/asr.py), and the `pocketsphinx` transcriber of extractors.asr
(`--asr pocketsphinx`). Two jobs:

`align_lines(audio, sr, lines)` places several untimed transcript lines on the audio:
  1. Each line is lower-cased and split into words; words the pronouncing dictionary knows are kept.
  2. All kept words, in order, are force-aligned to the whole clip in one pass (`Decoder.set_align_text`),
     which yields a start and end frame per word (10 ms frames).
  3. A line spans from its first aligned word's start to its last aligned word's end.
  4. Lines with no known word share the gap between their aligned neighbours in proportion to their
     character counts.
  When the alignment fails as a whole (no known words, unusual voices such as synthetic speech, or a
  transcript that does not match the audio) the lines are spread over the speech instead:
  pocketsphinx's voice-activity detector finds speech regions; with as many regions as lines, each line
  takes one region ("vad"); otherwise each line gets a share of the speech time proportional to its
  character count, with cuts moved to the nearest pause between regions when there are enough pauses
  ("proportional"). Without any detected speech the voiced span (by energy) is shared the same way.
  Returns the spans and the method used: "aligned", "vad" or "proportional".

`transcribe(audio, sr)` is for clips with no transcript: pocketsphinx's voice-activity detector finds
speech regions; each is decoded with the default language model, tuned for speed (no flat-lexicon
pass, narrower search: ~10x real time on one core); regions and their words are split into utterances
at pauses of `min_pause` seconds or more, and utterances longer than `max_utterance` are split at their
longest pause (extractors.asr.cut_utterances; pocketsphinx gives no punctuation, so no sentence ends).
The text is automatic and is marked so by the caller. Measured word error rate on real emotional speech
(RAVDESS): about 54%; see bench/README.md.

Nothing is downloaded: the acoustic model, dictionary and language model are the wheel's own files.
Decoders are created once per process (about 0.3 s each) and reused.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import re
from typing import Any

import numpy as np

from core.errors import ExtractionError, UserError
from extractors.asr import Word, cut_utterances, fill_gaps, package_version, to_segments, widen
from extractors.base import SAMPLE_RATE, Segment

log = logging.getLogger(__name__)

# Search settings for transcription: about 2.5x faster than pocketsphinx's defaults for a small loss.
FAST_SEARCH = {"fwdflat": False, "bestpath": False, "maxhmmpf": 3000, "maxwpf": 5}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


@functools.lru_cache(maxsize=2)
def _make_decoder(kind: str) -> tuple[Any, str]:
    try:
        from pocketsphinx import Decoder
    except ImportError as e:  # pragma: no cover - pinned in requirements.txt
        raise ExtractionError("pocketsphinx is not installed; `pip install pocketsphinx==5.1.1`") from e
    decoder = Decoder(loglevel="FATAL", **(FAST_SEARCH if kind == "asr" else {}))
    return decoder, decoder.get_cmn(False)


def _decoder(kind: str):
    """The process's pocketsphinx Decoder for `kind` ("align" or "asr"), reset for a new clip.

    Live cepstral mean normalisation carries its estimate from one utterance to the next; restoring the
    initial mean makes a clip's result independent of the clips decoded before it in the same process
    (which worker got which clips), so cached features are reproducible.
    """
    decoder, initial_cmn = _make_decoder(kind)
    decoder.reinit_feat()  # noise estimate and other front-end state
    decoder.set_cmn(initial_cmn)
    return decoder


def to_pcm16(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, dither: float = 1e-4) -> bytes:
    """(n_samples,) float32 in [-1, 1] at 16 kHz -> little-endian int16 bytes for pocketsphinx.

    A fixed-seed noise floor of `dither` (about 3 LSB) is added: pocketsphinx's feature normalisation fails
    on digital silence (exact zeros, as in synthesised or edited audio), and a fixed seed keeps results
    reproducible.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"pocketsphinx needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    x = np.asarray(audio, dtype=np.float32)
    if dither:
        x = x + np.random.default_rng(0).normal(0.0, dither, x.shape).astype(np.float32)
    return (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def words_of(text: str) -> list[str]:
    """Lower-cased word tokens as the pronouncing dictionary spells them (apostrophes kept)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _real_words(decoder) -> list[tuple[str, float, float]]:
    """(word, start s, end s) of the last utterance, without silences, fillers and sentence marks."""
    frate = float(decoder.config["frate"])
    out = []
    for seg in decoder.seg():
        word = seg.word
        if word.startswith(("<", "[", "+")):
            continue
        out.append((re.sub(r"\(\d+\)$", "", word), seg.start_frame / frate, (seg.end_frame + 1) / frate))
    return out


def voiced_span(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_s: float = 0.02) -> tuple[float, float]:
    """(start, end) seconds between the first and last 20 ms frame louder than 1/30 of the loudest one."""
    hop = max(1, int(frame_s * sample_rate))
    n = len(audio) // hop
    duration = len(audio) / sample_rate
    if n == 0:
        return 0.0, duration
    rms = np.sqrt((np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop) ** 2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() / 30)[0] if rms.max() > 0 else []
    if len(loud) == 0:
        return 0.0, duration
    return float(loud[0] * frame_s), float(min(duration, (loud[-1] + 1) * frame_s))


def speech_regions(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, min_gap: float = 0.3) -> list[tuple[float, float]]:
    """(start, end) seconds of speech found by pocketsphinx's voice-activity detector; gaps < min_gap merged."""
    from pocketsphinx import Segmenter

    regions: list[tuple[float, float]] = []
    for region in Segmenter(sample_rate=sample_rate).segment(io.BytesIO(to_pcm16(audio, sample_rate))):
        if regions and region.start_time - regions[-1][1] < min_gap:
            regions[-1] = (regions[-1][0], float(region.end_time))
        else:
            regions.append((float(region.start_time), float(region.end_time)))
    return regions


def spread_over_speech(audio: np.ndarray, sample_rate: int, lines: list[str]) -> tuple[list[tuple[float, float]], str]:
    """Spans for `lines` without word timings: one per speech region when counts match, else by length."""
    duration = len(audio) / sample_rate
    regions = speech_regions(audio, sample_rate) or [voiced_span(audio, sample_rate)]
    if len(regions) == len(lines):
        return widen(regions, duration), "vad"
    # A timeline of speech only: position p in [0, total] maps back to clip time through the regions.
    lengths = np.array([b - a for a, b in regions])
    offsets = np.concatenate([[0.0], np.cumsum(lengths)])
    total = float(offsets[-1])

    def to_clip(p: float) -> float:
        k = int(np.clip(np.searchsorted(offsets, p, side="right") - 1, 0, len(regions) - 1))
        return regions[k][0] + (p - offsets[k])

    weights = np.maximum(np.array([len(line) for line in lines], dtype=np.float64), 1.0)
    targets = total * np.cumsum(weights)[:-1] / weights.sum()
    pauses = list(offsets[1:-1])  # speech-time positions of the gaps between regions
    cuts: list[float] = []
    if len(pauses) >= len(targets):
        lo = 0
        for k, target in enumerate(targets):  # nearest pause to each target, in order, leaving enough for the rest
            hi = len(pauses) - (len(targets) - k)
            j = lo + int(np.argmin([abs(p - target) for p in pauses[lo : hi + 1]]))
            cuts.append(pauses[j])
            lo = j + 1
        bounds = [regions[0][0]]
        for c in cuts:
            k = int(np.searchsorted(offsets, c))
            bounds += [regions[k - 1][1], regions[k][0]]
        bounds.append(regions[-1][1])
        spans = list(zip(bounds[0::2], bounds[1::2]))
    else:
        edges = [0.0, *targets, total]
        spans = [(to_clip(a), to_clip(b) if b < total else regions[-1][1]) for a, b in zip(edges[:-1], edges[1:])]
    return widen([(float(a), float(b)) for a, b in spans], duration), "proportional"


def align_lines(audio: np.ndarray, sample_rate: int, lines: list[str]) -> tuple[list[tuple[float, float]], str]:
    """Time spans for untimed transcript lines, in order.

    audio: (n_samples,) float32 mono at 16 kHz. Returns ([(start, end) seconds per line], method) with
    method "aligned" (forced alignment; lines without known words interpolated) or "proportional".
    """
    duration = len(audio) / sample_rate
    decoder = _decoder("align")
    tokens = [[w for w in words_of(line) if decoder.lookup_word(w) is not None] for line in lines]
    flat = [w for ws in tokens for w in ws]
    aligned: list[tuple[str, float, float]] = []
    if flat:
        try:
            decoder.set_align_text(" ".join(flat))
            decoder.start_utt()
            decoder.process_raw(to_pcm16(audio, sample_rate), full_utt=True)
            decoder.end_utt()
            aligned = _real_words(decoder) if decoder.hyp() is not None else []
        except RuntimeError as e:
            log.debug("forced alignment failed: %s", e)
            aligned = []
    if len(aligned) != len(flat) or not flat:
        spans, method = spread_over_speech(audio, sample_rate, lines)
        log.warning("could not force-align %d transcript lines to the audio; placed them by %s", len(lines),
                    "speech regions" if method == "vad" else "length over the speech")
        return spans, method

    spans: list[tuple[float, float] | None] = []
    k = 0
    for ws in tokens:
        if ws:
            spans.append((aligned[k][1], aligned[k + len(ws) - 1][2]))
            k += len(ws)
        else:
            spans.append(None)
    fill_gaps(spans, [len(line) for line in lines], duration)  # lines without known words
    return widen([s for s in spans if s is not None], duration), "aligned"


def transcribe(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *, min_pause: float = 0.5, max_utterance: float = 20.0, speaker: str = "A") -> list[Segment]:
    """Automatic utterances of a clip without transcript (maybe none, for silence or noise).

    audio: (n_samples,) float32 mono at 16 kHz. Returns segments in time order whose text is
    pocketsphinx's hypothesis; every segment is attributed to `speaker`.
    """
    from pocketsphinx import Segmenter

    pcm = to_pcm16(audio, sample_rate)
    decoder = _decoder("asr")
    words: list[Word] = []
    for region in Segmenter(sample_rate=sample_rate).segment(io.BytesIO(pcm)):
        decoder.start_utt()
        decoder.process_raw(region.pcm, full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is None:
            continue
        words += [Word(w, region.start_time + a, region.start_time + b) for w, a, b in _real_words(decoder)]
    duration = len(audio) / sample_rate
    segments = to_segments(cut_utterances(words, min_pause=min_pause, max_utterance=max_utterance), duration, speaker)
    log.debug("transcribed %.1f s into %d utterances", duration, len(segments))
    return segments


class PocketsphinxTranscriber:
    """The `pocketsphinx` transcriber of extractors.asr (`--asr pocketsphinx`)."""

    name = "pocketsphinx"
    label = "pocketsphinx"
    SETTINGS = ("min_pause", "max_utterance")

    def __init__(self, *, min_pause: float = 0.5, max_utterance: float = 20.0, threads: int = 0) -> None:
        if importlib.util.find_spec("pocketsphinx") is None:  # pragma: no cover - pinned in requirements.txt
            raise UserError("pocketsphinx is not installed; `pip install pocketsphinx==5.1.1`, or use --asr whisper")
        self.min_pause, self.max_utterance = float(min_pause), float(max_utterance)

    @property
    def params(self) -> dict[str, Any]:
        return {"engine": f"pocketsphinx {package_version('pocketsphinx')}", "model": "en-us", "min_pause": self.min_pause,
                "max_utterance": self.max_utterance}

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        return transcribe(audio, sample_rate, min_pause=self.min_pause, max_utterance=self.max_utterance)
