"""What every extractor shares: decoded media, utterance segments, the Extractor protocol, the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Segment:
    """One utterance: its time span in seconds, its speaker and its words."""

    start: float
    end: float
    speaker: str = "A"
    text: str = ""
    labels: dict[str, float] = field(default_factory=dict)


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
        """(n_utt, dim) float32, finite."""
        ...


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
