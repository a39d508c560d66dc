"""What every extractor shares: decoded media, utterance segments, the Extractor protocol, the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Segment:
    """One utterance: its time span in seconds, its speaker and its words. `words`: (text, start, end) of each word
    when a transcriber timed them (automatic text; the diarizer splits an utterance between words), else empty."""

    start: float
    end: float
    speaker: str = "A"
    text: str = ""
    labels: dict[str, float] = field(default_factory=dict)
    words: list[tuple[str, float, float]] = field(default_factory=list, compare=False, repr=False)


@dataclass
class Media:
    """A clip decoded once.

    audio: (n_samples,) float32 mono at `sample_rate`; frames: (n_frames, H, W, 3) uint8 RGB sampled at a
    fixed rate, or None for audio-only files; frame_times: (n_frames,) seconds.
    """

    path: str
    audio: np.ndarray
    sample_rate: int
    duration: float
    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None


@runtime_checkable
class Extractor(Protocol):
    """Maps a clip's media and its utterance segments to one feature row per utterance."""

    name: str
    modality: str  # "text" | "audio" | "visual"
    dim: int

    @property
    def params(self) -> dict[str, Any]:
        """Everything that changes the output (serialised into datasets and checkpoints)."""
        ...

    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, dim) float32, finite; an all-NaN row marks an utterance for which this modality is
        absent (no face in its frames, no words), which the dataset records as not present."""
        ...


class NoFeatures:
    """The "none" extractor: the modality is absent. Width 0 by default (a modality left out of a dataset, as
    the CSD importer writes for a missing one); with `dim`, absent rows of that width, for a model that has
    the modality when a prediction leaves it out."""

    name = "none"
    params: dict[str, Any] = {}

    def __init__(self, modality: str = "visual", dim: int = 0) -> None:
        self.modality, self.dim = modality, int(dim)

    def __call__(self, media: Any, segments: list[Segment]) -> np.ndarray:
        """(n_utt, dim) float32 NaN rows: absent (see Extractor.__call__)."""
        return np.full((len(segments), self.dim), np.nan, dtype=np.float32)


def spec_of(extractor: Extractor) -> dict[str, Any]:
    """The feature spec stored in dataset meta and checkpoints: {"name", "params", "dim"}."""
    return {"name": extractor.name, "params": dict(extractor.params), "dim": int(extractor.dim)}


# modality -> extractor name -> factory(**params). Adding an extractor adds one line in extractors/__init__.py.
REGISTRY: dict[str, dict[str, Callable[..., Extractor]]] = {"text": {}, "audio": {}, "visual": {}}


def register(modality: str, name: str) -> Callable:
    def wrap(factory: Callable[..., Extractor]) -> Callable[..., Extractor]:
        REGISTRY[modality][name] = factory
        return factory

    return wrap


# --- helpers shared by the extractors (additions; nothing above changes) ---


def segment_audio(media: Media, segment: Segment, min_seconds: float = 0.0) -> np.ndarray:
    """The utterance's audio, (n,) float32, at least `min_seconds` long.

    A segment shorter than `min_seconds` is widened symmetrically around its centre (taking real audio from
    the clip, shifted inwards at the clip's edges) and, only when the whole clip is shorter, zero-padded at
    the end. Widening keeps the statistics of real speech, where zero-padding would add silence.
    """
    sr = media.sample_rate
    n_total = media.audio.shape[0]
    start = int(round(max(0.0, segment.start) * sr))
    end = int(round(max(0.0, segment.end) * sr))
    start, end = min(start, n_total), min(max(end, start), n_total)
    need = int(np.ceil(min_seconds * sr))
    if end - start < need:
        centre = (start + end) // 2
        start = max(0, centre - need // 2)
        end = min(n_total, start + need)
        start = max(0, end - need)
    out = media.audio[start:end]
    if out.shape[0] < need:
        out = np.concatenate([out, np.zeros(need - out.shape[0], dtype=np.float32)])
    return np.ascontiguousarray(out, dtype=np.float32)


def segment_frames(frame_times: np.ndarray, segment: Segment) -> np.ndarray:
    """Indices (k,) int64 of the frames whose time lies in [start, end).

    An utterance shorter than the frame interval may contain no sampled frame: it then gets the single frame
    nearest its midpoint, so every utterance of a clip with video sees at least one frame.
    """
    frame_times = np.asarray(frame_times)
    if frame_times.size == 0:
        return np.zeros(0, dtype=np.int64)
    inside = np.flatnonzero((frame_times >= segment.start) & (frame_times < segment.end))
    if inside.size:
        return inside.astype(np.int64)
    mid = 0.5 * (segment.start + segment.end)
    return np.array([int(np.argmin(np.abs(frame_times - mid)))], dtype=np.int64)
