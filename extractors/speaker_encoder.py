"""The GE2E speaker encoder of Resemblyzer as plain torch: who is speaking, as a 256-d unit vector per stretch of audio.

The weights are the ones that ship inside the PyPI wheel `resemblyzer==0.1.4` (Apache-2.0,
`resemblyzer/pretrained.pt`, 17 MB; Wan et al., "Generalized end-to-end loss for speaker verification", 2018).
The package itself is not imported: its `audio` module needs librosa and webrtcvad at import, which the diarizer
does not use. This module reads the weights file (torch.load with weights_only=True) and computes the same thing:

    mel:   |STFT|^2 of 16 kHz audio (25 ms Hann window, 10 ms hop, centred with zero padding, as librosa's
           melspectrogram) through 40 Slaney mel filters; a power spectrogram, not a log one.
    embed: a 3-layer LSTM of 256 over (B, T, 40) mel frames; the last layer's final hidden state h gives
           e = ReLU(W h + b) / ||ReLU(W h + b)||  (B, 256).

Resemblyzer embeds 1.6 s windows (160 frames) of audio normalised to -30 dBFS. tests/test_speaker_encoder.py checks
the mel frames, the window embeddings and `embed_utterance` against resemblyzer's own (librosa's mel, its
VoiceEncoder) on real speech.

    enc = load_encoder()
    mel = enc.mel(audio)                                   # (n_frames, 40) float32, frame i at i * 10 ms
    e = enc.embed_frames(mel, [(0, 160), (40, 200)])       # (2, 256) unit rows
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from core.errors import UserError
from extractors.base import SAMPLE_RATE

PACKAGE = "resemblyzer"
PACKAGE_VERSION = "0.1.4"
INSTALL_HINT = f"`pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` (only its weights file is used; see the Makefile), or --diarize off"
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s: the window length the encoder was trained on
TARGET_DBFS = -30.0
HIDDEN = 256


def weights_path() -> Path:
    """resemblyzer/pretrained.pt inside the installed wheel, found without importing the package (which would import
    librosa and webrtcvad). UserError naming the install command when it is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise UserError(f"diarization needs the GE2E weights inside the {PACKAGE} wheel, which is not installed: {INSTALL_HINT}")


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32 Slaney-scale, Slaney-normalised triangular filters from 0 Hz to Nyquist
    (librosa.filters.mel's defaults, which resemblyzer uses)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:  # linear below 1 kHz, logarithmic above (Slaney's Auditory Toolbox)
        f = np.asarray(f, dtype=np.float64)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, 3.0 * f / 200.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), 200.0 * m / 3.0)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


class SpeakerEncoder:
    """Resemblyzer's VoiceEncoder, computed with torch alone on the CPU (eval mode, no gradients)."""

    def __init__(self, path: str | Path | None = None) -> None:
        import torch

        path = Path(path) if path is not None else weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        except Exception as e:  # a truncated or foreign file: say which and how to fix it
            raise UserError(f"{path}: cannot read the GE2E weights ({type(e).__name__}: {e}); reinstall {INSTALL_HINT}") from e
        self.lstm = torch.nn.LSTM(N_MELS, HIDDEN, 3, batch_first=True)
        self.linear = torch.nn.Linear(HIDDEN, HIDDEN)
        self.lstm.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({"weight": state["linear.weight"], "bias": state["linear.bias"]})
        self.lstm.eval()
        self.filters = torch.from_numpy(mel_filters())
        self.window = torch.hann_window(N_FFT, periodic=True)
        self.torch = torch

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """(n_samples,) float32 16 kHz mono -> (1 + n_samples // 160, 40) float32 mel power frames."""
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        if x.numel() < 2:  # too short for an STFT frame's padding: treat as silence of one frame
            x = torch.zeros(N_FFT // 2 + 1)
        with torch.inference_mode():
            spec = torch.stft(x, N_FFT, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True)
            power = spec.real.square() + spec.imag.square()  # (n_freq, n_frames)
            return (power.T @ self.filters).numpy()

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """(B, T, 40) float32 mel frames -> (B, 256) float32 unit embeddings (T frames each, no padding).

        Runs torch on one intra-op thread: on 2 shared cores (load ~4) the LSTM over 180 windows of 1.6 s took 0.68 s
        on one thread and 4.9 s on two, which spin against each other and the other jobs."""
        torch = self.torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                _, (hidden, _) = self.lstm(torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32)))
                raw = torch.relu(self.linear(hidden[-1]))
                return (raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)).numpy()
        finally:
            torch.set_num_threads(threads)

    def embed_frames(self, mel: np.ndarray, spans: list[tuple[int, int]], audio: np.ndarray | None = None) -> np.ndarray:
        """(n, 256) float32 embeddings of the mel frame spans [start, end) of one clip's `mel` (n_frames, 40).

        Spans of equal length run as one batch. audio: the clip's (n_samples,) samples; when given, each span is
        first scaled to TARGET_DBFS by the mean square of its samples (resemblyzer normalises whole utterances the
        same way; the encoder reads power, so a quieter voice would otherwise look like another voice).
        Empty spans are refused with ValueError.
        """
        out = np.zeros((len(spans), HIDDEN), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, (a, b) in enumerate(spans):
            if b <= a:
                raise ValueError(f"empty mel span {a}..{b}")
            by_length.setdefault(b - a, []).append(i)
        for rows in by_length.values():
            batch = np.stack([mel[spans[i][0]:spans[i][1]] for i in rows])
            if audio is not None:
                batch = batch * np.array([level_gain(audio[spans[i][0] * HOP:spans[i][1] * HOP]) for i in rows], dtype=np.float32)[:, None, None]
            out[rows] = self.embed(batch)
        return out

    def embed_utterance(self, audio: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """Resemblyzer's `VoiceEncoder.embed_utterance` (on audio it has already preprocessed): 1.6 s windows every
        1/rate s, the last one zero-padded when it covers at least min_coverage of its length.
        Returns (256,) the L2-normalised mean of the (n, 256) window embeddings, and those."""
        n_frames = int(np.ceil((len(audio) + 1) / HOP))
        step = int(np.round((SAMPLE_RATE / rate) / HOP))
        starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
        coverage = (len(audio) - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
        if coverage < min_coverage and len(starts) > 1:
            starts = starts[:-1]
        padded = np.pad(np.asarray(audio, dtype=np.float32), (0, max(0, (starts[-1] + PARTIAL_FRAMES) * HOP - len(audio))))
        partials = self.embed_frames(self.mel(padded), [(s, s + PARTIAL_FRAMES) for s in starts])
        mean = partials.mean(axis=0)
        return mean / np.linalg.norm(mean), partials


def level_gain(samples: np.ndarray) -> float:
    """The power factor that brings `samples` to TARGET_DBFS (mean square), as resemblyzer's normalize_volume does
    in both directions; 1 for silence."""
    power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    return 10.0 ** (TARGET_DBFS / 10.0) / power if power > 1e-10 else 1.0


@functools.lru_cache(maxsize=1)
def load_encoder() -> SpeakerEncoder:
    """The process's encoder (weights load once, ~0.1 s)."""
    return SpeakerEncoder()
