"""Audio features: MFCC statistics per utterance with torchaudio (name "mfcc").

Row layout (dim = 2 * n_mfcc): the mean of each of the n_mfcc coefficients over the utterance's frames, then
their standard deviations. Frames are 25 ms Hann windows every 10 ms on the 16 kHz signal, `n_mels` mel bands
up to 8 kHz, log-mel (dB) then DCT. Segments shorter than `min_seconds` are widened around their centre
(as for openSMILE), so even an empty segment gives a finite row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from extractors.base import SAMPLE_RATE, Media, Segment, segment_audio


class MfccAudio:
    """MFCC mean and std per utterance: (n_utt, 2 * n_mfcc) float32, finite."""

    name = "mfcc"
    modality = "audio"

    def __init__(self, n_mfcc: int = 40, n_mels: int = 64, min_seconds: float = 0.1) -> None:
        if n_mfcc < 1 or n_mels < n_mfcc:
            raise ValueError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
        self.n_mfcc = int(n_mfcc)
        self.n_mels = int(n_mels)
        self.min_seconds = float(min_seconds)
        self.dim = 2 * self.n_mfcc
        self._transform: Any = None

    @property
    def params(self) -> dict[str, Any]:
        return {"n_mfcc": self.n_mfcc, "n_mels": self.n_mels, "min_seconds": self.min_seconds}

    @property
    def transform(self) -> Any:
        """torchaudio's MFCC module, built on first use."""
        if self._transform is None:
            import torchaudio

            self._transform = torchaudio.transforms.MFCC(
                sample_rate=SAMPLE_RATE, n_mfcc=self.n_mfcc, log_mels=False,
                melkwargs={"n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": self.n_mels,
                           "f_min": 0.0, "f_max": SAMPLE_RATE / 2},
            )
        return self._transform

    def features(self, signal: np.ndarray) -> np.ndarray:
        """(2 * n_mfcc,) float32 [means, stds] of one 16 kHz mono signal (n,) float32."""
        import torch

        if signal.size == 0:
            return np.zeros(self.dim, dtype=np.float32)
        with torch.no_grad():
            mfcc = self.transform(torch.from_numpy(np.ascontiguousarray(signal)))  # (n_mfcc, n_frames)
        mean = mfcc.mean(dim=1)
        std = mfcc.std(dim=1, unbiased=False)  # biased: a single frame gives 0, not NaN
        row = torch.cat([mean, std]).numpy().astype(np.float32)
        return np.nan_to_num(row, nan=0.0, posinf=0.0, neginf=0.0)

    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, 2 * n_mfcc) float32."""
        if media.sample_rate != SAMPLE_RATE:
            raise ValueError(f"mfcc expects {SAMPLE_RATE} Hz audio, got {media.sample_rate} Hz")
        out = np.zeros((len(segments), self.dim), dtype=np.float32)
        for i, seg in enumerate(segments):
            out[i] = self.features(segment_audio(media, seg, self.min_seconds))
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_transform"] = None
        return state
