"""Visual features from py-feat's Detectorv2: action units, emotions and head pose (name "pyfeat").

This is the open stand-in for the paper's FACET features. Row layout (dim = 31):

| index | features                                                                                   |
|-------|--------------------------------------------------------------------------------------------|
| 0-19  | AU01 AU02 AU04 AU05 AU06 AU07 AU09 AU10 AU11 AU12 AU14 AU15 AU17 AU20 AU23 AU24 AU25 AU26 AU28 AU43 (probabilities) |
| 20-26 | Neutral Happy Sad Surprise Fear Disgust Anger (probabilities)                              |
| 27-29 | Pitch Roll Yaw, as py-feat reports them                                                    |
| 30    | face_fraction: share of the utterance's sampled frames with a face                         |

Per frame the largest detected face is used; features 0-29 are averaged over the utterance's frames with a
face; utterances with no face (or clips without video) get zeros, logged.

Weights: Detectorv2 needs two files from the HuggingFace hub, `py-feat/retinaface_r34` (model.safetensors)
and `py-feat/face_multitask_v2` (face_multitask_v28.safetensors); identity embeddings are not used. They are
looked for, in order, in `weights_dir` (flat files, `<repo name>/<file>` folders or a HuggingFace cache
layout), in py-feat's own download folder (`feat/resources`) and in the HuggingFace cache. When they are
missing, py-feat downloads them only if the hub answers within a few seconds; otherwise (offline, or
HF_HUB_OFFLINE=1) construction fails at once with an ExtractionError that says how to provide them,
instead of py-feat's ~47 s of retries.

py-feat's code is MIT-licensed; its model weights carry their own licences (see the model cards).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import numpy as np

from core.errors import ExtractionError
from extractors.base import Media, Segment
from extractors.media import DEFAULT_FPS, DEFAULT_MAX_SIDE
from extractors.visual_facemesh import per_utterance

log = logging.getLogger(__name__)

AU_COLUMNS = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12", "AU14", "AU15",
              "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43"]
EMOTION_COLUMNS = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"]
POSE_COLUMNS = ["Pitch", "Roll", "Yaw"]
FRAME_COLUMNS = AU_COLUMNS + EMOTION_COLUMNS + POSE_COLUMNS
FEATURES = FRAME_COLUMNS + ["face_fraction"]
DIM = len(FEATURES)

# role -> (hub repo, accepted file names, first = the name py-feat asks for)
WEIGHTS = {
    "retinaface": ("py-feat/retinaface_r34", ("model.safetensors", "retinaface_r34.safetensors")),
    "multitask": ("py-feat/face_multitask_v2", ("face_multitask_v28.safetensors",)),
}
# Names unique enough to accept as loose files in a flat folder ("model.safetensors" is not).
_FLAT_NAMES = {"retinaface": ("retinaface_r34.safetensors",), "multitask": ("face_multitask_v28.safetensors",)}

_DETECTORS: dict[tuple[str, ...], Any] = {}
_DETECTOR_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------ weights


def _pyfeat_resource_dir() -> Path | None:
    """py-feat's download folder (feat/resources), found without importing feat (which takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "resources"


def _hf_cache_dir() -> Path:
    env = os.environ.get("HF_HUB_CACHE")
    if env:
        return Path(env)
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(home) / "hub"


def _in_hf_layout(root: Path, repo: str, names: tuple[str, ...]) -> Path | None:
    """A file of `repo` in a HuggingFace cache folder: root/models--org--name/snapshots/<rev>/<file>."""
    snapshots = root / ("models--" + repo.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    for name in names:
        for hit in sorted(snapshots.glob(f"*/{name}")):
            if hit.is_file():
                return hit
    return None


def find_weights(weights_dir: str | os.PathLike | None = None,
                 search_default: bool = True) -> tuple[dict[str, Path], list[str]]:
    """Locate Detectorv2's weight files.

    Returns ({role: path} for the files found, [role, ...] still missing). With `weights_dir`, it is searched
    for flat files (retinaface_r34.safetensors, face_multitask_v28.safetensors), `<repo name>/<file>`
    folders (retinaface_r34/model.safetensors) and a HuggingFace cache layout; `search_default` adds
    py-feat's own download folder and the HuggingFace cache.
    """
    roots: list[Path] = []
    if weights_dir is not None:
        roots.append(Path(weights_dir).expanduser())
    if search_default:
        resource = _pyfeat_resource_dir()
        roots += [r for r in (resource, _hf_cache_dir()) if r is not None]
    found: dict[str, Path] = {}
    for role, (repo, names) in WEIGHTS.items():
        for root in roots:
            if not root.is_dir():
                continue
            candidates = [root / n for n in _FLAT_NAMES[role]]
            candidates += [root / repo.split("/")[1] / n for n in names]
            hit = next((c for c in candidates if c.is_file()), None) or _in_hf_layout(root, repo, names)
            if hit is not None:
                found[role] = hit
                break
    return found, [role for role in WEIGHTS if role not in found]


def how_to_provide(missing: list[str]) -> str:
    """The fix to print when weights are missing."""
    cmds = "; ".join(
        f"hf download {WEIGHTS[r][0]} {WEIGHTS[r][1][0]} --local-dir DIR/{WEIGHTS[r][0].split('/')[1]}"
        for r in missing
    )
    return (f"on a machine with internet run: {cmds}; copy DIR here and pass it as --pyfeat-weights DIR "
            "(weights_dir=DIR), or run once online so py-feat caches them")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the HuggingFace hub (or HF_ENDPOINT) accepts a TCP connection within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _local_weights(paths: dict[str, Path]) -> Iterator[None]:
    """While constructing Detectorv2: serve RetinaFace's weights from `paths` and forbid any download.

    Detectorv2 takes the multitask path as an argument but always fetches RetinaFace through
    feat.utils.hf_hub_download_with_fallback; offline mode makes any other fetch fail at once, not retry.
    """
    import feat.utils
    from huggingface_hub import constants

    original, offline = feat.utils.hf_hub_download_with_fallback, constants.HF_HUB_OFFLINE

    def fetch(repo_id: str, filename: str, fallback_filename: str, cache_dir: str) -> str:
        if repo_id == WEIGHTS["retinaface"][0]:
            return str(paths["retinaface"])
        return original(repo_id=repo_id, filename=filename, fallback_filename=fallback_filename, cache_dir=cache_dir)

    feat.utils.hf_hub_download_with_fallback = fetch
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        feat.utils.hf_hub_download_with_fallback = original
        constants.HF_HUB_OFFLINE = offline


def load_detector(weights_dir: str | os.PathLike | None = None, allow_download: bool = True,
                  reachable: Any = hub_reachable) -> Any:
    """A py-feat Detectorv2 on CPU without the identity model, cached per process.

    Raises ExtractionError within seconds when the weights are neither local nor downloadable.
    """
    found, missing = find_weights(weights_dir)
    where = f"{weights_dir}: " if weights_dir is not None else "pyfeat: "
    if missing and weights_dir is not None and not found:
        raise ExtractionError(f"{where}no py-feat weights there ({', '.join(missing)} missing); "
                              + how_to_provide(missing))
    if missing and not (allow_download and reachable()):
        raise ExtractionError(f"{where}py-feat weights not found ({', '.join(missing)}) and the HuggingFace hub "
                              "is unreachable; " + how_to_provide(missing))
    key = tuple(str(found.get(r, "download")) for r in WEIGHTS)
    with _DETECTOR_LOCK:
        if key in _DETECTORS:
            return _DETECTORS[key]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import feat

            try:
                if missing:
                    log.info("downloading py-feat weights (%s) into py-feat's cache", ", ".join(missing))
                    detector = feat.Detectorv2(device="cpu", identity_model=None)
                else:
                    with _local_weights(found):
                        detector = feat.Detectorv2(device="cpu", identity_model=None,
                                                   multitask_weights=str(found["multitask"]))
            except ExtractionError:
                raise
            except Exception as e:
                raise ExtractionError(f"{where}py-feat could not load its detector ({e}); "
                                      + how_to_provide(list(WEIGHTS))) from e
        _DETECTORS[key] = detector
        return detector


# ------------------------------------------------------------------------------------------ assembly


def frames_from_detections(df: Any, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame features from py-feat's detection table (a Fex/DataFrame, one row per face).

    Args:
        df: columns "frame" (index into the frames passed to the detector), FaceRectWidth, FaceRectHeight,
            FRAME_COLUMNS; frames without a face appear as rows with NaN face boxes, or not at all.
        n_frames: how many frames were passed.
    Returns:
        feats (n_frames, 30) float32 in FRAME_COLUMNS order (zeros where no face) and found (n_frames,) bool.
    """
    feats = np.zeros((n_frames, len(FRAME_COLUMNS)), dtype=np.float32)
    found = np.zeros(n_frames, dtype=bool)
    absent = [c for c in FRAME_COLUMNS + ["frame"] if c not in df.columns]
    if absent:
        raise ExtractionError(f"pyfeat: the detector's output lacks columns {absent}; py-feat 2.1.5 is expected")
    frame = df["frame"].to_numpy()
    area = (df["FaceRectWidth"].to_numpy(dtype=np.float64) * df["FaceRectHeight"].to_numpy(dtype=np.float64)
            if {"FaceRectWidth", "FaceRectHeight"} <= set(df.columns) else np.ones(len(df)))
    values = df[FRAME_COLUMNS].to_numpy(dtype=np.float64)
    valid = np.isfinite(area) & (area > 0) & np.isfinite(values).any(axis=1)
    best_area = np.full(n_frames, -np.inf)
    for row in np.flatnonzero(valid):
        f = int(frame[row])
        if 0 <= f < n_frames and area[row] > best_area[f]:  # the largest face: the one nearest the camera
            best_area[f] = area[row]
            feats[f] = np.nan_to_num(values[row]).astype(np.float32)
            found[f] = True
    return feats, found


class PyFeatVisual:
    """py-feat Detectorv2 AUs, emotions and head pose per utterance: (n_utt, 31) float32."""

    name = "pyfeat"
    modality = "visual"
    dim = DIM

    def __init__(self, fps: float = DEFAULT_FPS, max_side: int = DEFAULT_MAX_SIDE,
                 weights_dir: str | os.PathLike | None = None, allow_download: bool = True,
                 batch_size: int = 8, load: bool = True, detector: str = "Detectorv2") -> None:
        """fps, max_side: the frame sampling the features are meant for (decode the clip with them).
        detector: recorded in `params`; only py-feat's Detectorv2 is supported.
        weights_dir: where the weight files are (see the module docstring); it and allow_download,
        batch_size do not change the output, so they are not in `params`. load: build the detector now, so
        missing weights fail here rather than on the first clip."""
        if detector != "Detectorv2":
            raise ExtractionError(f"pyfeat: detector {detector!r} is not supported; only Detectorv2 is")
        self.fps = float(fps)
        self.max_side = int(max_side)
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self.allow_download = bool(allow_download)
        self.batch_size = int(batch_size)
        self._detector: Any = None
        if load:
            _ = self.detector

    @property
    def params(self) -> dict[str, Any]:
        return {"fps": self.fps, "max_side": self.max_side, "detector": "Detectorv2"}

    @property
    def detector(self) -> Any:
        if self._detector is None:
            self._detector = load_detector(self.weights_dir, self.allow_download)
        return self._detector

    def detect(self, frames: np.ndarray) -> Any:
        """Run py-feat on frames (n, H, W, 3) uint8 RGB; returns its per-face table."""
        import torch

        # torch refuses to share read-only memory (decoded frames are read-only views of ffmpeg's output).
        frames = np.array(frames, copy=not frames.flags.writeable or not frames.flags.c_contiguous)
        tensor = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        return self.detector.detect(tensor, data_type="tensor", batch_size=self.batch_size, progress_bar=False)

    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, 31) float32: per-utterance means (see the module docstring)."""
        def frame_features(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            try:
                table = self.detect(frames)
            except ExtractionError:
                raise
            except Exception as e:
                raise ExtractionError(f"{media.path}: py-feat failed on its frames ({e}); try --visual facemesh") from e
            return frames_from_detections(table, len(frames))

        return per_utterance(media, segments, self.fps, self.name, DIM, frame_features)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_detector"] = None  # rebuilt (and cached) in each worker process
        return state
