"""Tiny generated clips for the extraction tests: espeak-ng speech over a still real face (ffmpeg).

`make_clip(path, lines)` speaks each line with espeak-ng, joins them with pauses and muxes the speech with a
still image (scikit-image's astronaut photo, downscaled) into a small H.264 video, or writes audio only
for audio suffixes. It returns the clip's duration and each line's (start, end) in seconds. Everything is
made locally; nothing is downloaded. A clip takes about 0.2 s to make.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

SR = 16_000
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg")


def tools_available() -> bool:
    return bool(shutil.which("ffmpeg") and shutil.which("espeak-ng"))


def speak(text: str, voice: str = "en-us", speed: int = 170) -> np.ndarray:
    """(n,) float32 speech at 16 kHz for `text` from espeak-ng."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True).stdout
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
                         input=wav, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, "<f4").copy()


@functools.lru_cache(maxsize=4)
def face_png(directory: str, side: int = 160) -> str:
    """A real face (scikit-image's astronaut, Eileen Collins) as a PNG in `directory`, `side` pixels wide."""
    from skimage import data, transform
    from skimage.io import imsave

    img = data.astronaut()[:300, 100:400]  # the face and shoulders
    img = (transform.resize(img, (side, side), anti_aliasing=True) * 255).astype(np.uint8)
    path = Path(directory) / "face.png"
    imsave(path, img, check_contrast=False)
    return str(path)


def write_wav(path: Path, audio: np.ndarray, sr: int = SR) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def make_clip(path: str | Path, lines: list[str], *, pause: float = 0.6, lead: float = 0.3, face: bool = True,
              voice: str = "en-us", min_seconds: float = 0.0) -> tuple[float, list[tuple[float, float]]]:
    """Write a clip speaking `lines`; returns (duration, [(start, end) per line]) in seconds.

    Video suffixes get a 160x160 still face (or a grey frame with face=False) at 10 fps; audio suffixes
    get the speech alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts, spans, t = [np.zeros(int(lead * SR), np.float32)], [], lead
    for line in lines:
        speech = speak(line, voice)
        parts += [speech, np.zeros(int(pause * SR), np.float32)]
        spans.append((t, t + len(speech) / SR))
        t += (len(speech) + int(pause * SR)) / SR
    audio = np.concatenate(parts)
    if len(audio) < min_seconds * SR:
        audio = np.concatenate([audio, np.zeros(int(min_seconds * SR) - len(audio), np.float32)])
    # a whisper of noise: real recordings are never digitally silent
    audio = audio + np.random.default_rng(0).normal(0, 1e-4, len(audio)).astype(np.float32)
    duration = len(audio) / SR
    wav = path.with_suffix(".gen.wav")
    write_wav(wav, audio)
    try:
        if path.suffix.lower() == ".wav":
            wav.replace(path)
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
        else:
            image = ["-loop", "1", "-framerate", "10", "-i", face_png(str(path.parent))] if face else \
                ["-f", "lavfi", "-i", "color=c=gray:s=160x160:r=10"]
            subprocess.run(["ffmpeg", "-v", "error", "-y", *image, "-i", str(wav), "-t", f"{duration:.3f}",
                            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                           check=True)
    finally:
        wav.unlink(missing_ok=True)
    return duration, spans


def make_silent_video(path: str | Path, seconds: float = 1.0) -> None:
    """A video with no audio stream."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s=64x64:r=10:d={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
