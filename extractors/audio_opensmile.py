"""Audio features: openSMILE functionals over each utterance's 16 kHz mono segment (name "opensmile").

Feature sets (opensmile 2.6.0 `FeatureSet` members) and their dims:

| feature_set  | dim  | what                                                                   |
|--------------|------|------------------------------------------------------------------------|
| IS09         | 384  | INTERSPEECH 2009 Emotion Challenge functionals (the paper's audio)     |
| eGeMAPSv02   | 88   | extended Geneva minimalistic acoustic parameter set                     |
| emobase      | 988  | openSMILE's emotion baseline                                            |
| ComParE_2016 | 6373 | INTERSPEECH 2016 ComParE functionals                                    |

Other `opensmile.FeatureSet` members (IS10, GeMAPSv01b, ...) also work; their dim is read from openSMILE.

Short segments: openSMILE returns NaN functionals for very short input (eGeMAPSv02 and ComParE need about
0.1 s), so each segment is widened to at least `min_seconds` around its centre with real audio from the
clip (zero-padded only if the whole clip is shorter); any remaining non-finite value becomes 0.

openSMILE's licence is for research and personal use only (audEERING); commercial use needs their licence.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from core.errors import ExtractionError
from extractors.base import Media, Segment, segment_audio

log = logging.getLogger(__name__)

FEATURE_SET_DIMS = {"IS09": 384, "eGeMAPSv02": 88, "emobase": 988, "ComParE_2016": 6373}
DEFAULT_FEATURE_SET = "IS09"


class OpenSmileAudio:
    """openSMILE functionals per utterance: (n_utt, dim) float32, finite."""

    name = "opensmile"
    modality = "audio"

    def __init__(self, feature_set: str = DEFAULT_FEATURE_SET, min_seconds: float = 0.25) -> None:
        """feature_set: an opensmile.FeatureSet member name (see the table). min_seconds: the shortest window
        analysed; shorter utterances are widened to it (see the module docstring)."""
        self.feature_set = str(feature_set)
        self.min_seconds = float(min_seconds)
        self._smile: Any = None
        if self.feature_set in FEATURE_SET_DIMS:
            self.dim = FEATURE_SET_DIMS[self.feature_set]
        else:
            # Unknown to the table: build openSMILE now, which validates the name and gives the dim.
            self.dim = len(self.smile.feature_names)

    @property
    def params(self) -> dict[str, Any]:
        return {"feature_set": self.feature_set, "min_seconds": self.min_seconds}

    @property
    def smile(self) -> Any:
        """The opensmile.Smile object, built on first use (and again after unpickling in a worker)."""
        if self._smile is None:
            import opensmile

            names = list(opensmile.FeatureSet.__members__)
            if self.feature_set not in names:
                raise ExtractionError(
                    f"opensmile: unknown feature set {self.feature_set!r}; choose one of {', '.join(names)}"
                )
            self._smile = opensmile.Smile(
                feature_set=opensmile.FeatureSet[self.feature_set],
                feature_level=opensmile.FeatureLevel.Functionals,
            )
        return self._smile

    def features(self, signal: np.ndarray, sample_rate: int) -> np.ndarray:
        """(dim,) float32 functionals of one mono signal (n,) float32."""
        with warnings.catch_warnings():
            # "Segment too short, filling with NaN": handled by the widening and nan_to_num.
            warnings.simplefilter("ignore", UserWarning)
            df = self.smile.process_signal(signal, sample_rate)
        row = df.to_numpy(dtype=np.float32).reshape(-1)
        if row.shape[0] != self.dim:
            raise ExtractionError(f"opensmile: {self.feature_set} gave {row.shape[0]} features, expected {self.dim}")
        return np.nan_to_num(row, nan=0.0, posinf=0.0, neginf=0.0)

    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, dim) float32: functionals of each segment's audio."""
        out = np.zeros((len(segments), self.dim), dtype=np.float32)
        for i, seg in enumerate(segments):
            out[i] = self.features(segment_audio(media, seg, self.min_seconds), media.sample_rate)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_smile"] = None  # openSMILE's native handle does not pickle; rebuilt in the worker
        return state
