"""Media decoding: probe a clip and decode it once into 16 kHz mono audio plus frames sampled at a fixed rate.

One ffmpeg process per clip writes both outputs at the same time: the frames (the big stream) to stdout and
the audio to a second pipe that a thread drains, so the file is read and demuxed once. The command line is
built with ffmpeg-python. The binary is apt's `ffmpeg` when it is on PATH, else the static one that ships in
`imageio-ffmpeg` (which has no ffprobe: `probe` then parses `ffmpeg -i`'s stream listing instead).

Memory: frames cost n_frames * H * W * 3 bytes, e.g. 5 fps at 640x360 is about 3.5 MB per second of video
(200 MB a minute). Lower `fps` or `max_side` for long clips.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

from data.errors import ExtractionError
from extractors.base import SAMPLE_RATE, Media

log = logging.getLogger(__name__)

DEFAULT_FPS = 5.0
DEFAULT_MAX_SIDE = 640


class NoAudioError(ExtractionError):
    """The clip has no audio stream (a silent video or a still image): the caller decides what to do."""


@functools.lru_cache(maxsize=1)
def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable: apt's on PATH, else imageio-ffmpeg's static build."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ExtractionError(
            "ffmpeg: not on PATH and imageio-ffmpeg is not installed; "
            "install ffmpeg (apt-get install ffmpeg) or `pip install imageio-ffmpeg`"
        ) from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffprobe_binary() -> str | None:
    """ffprobe next to the chosen ffmpeg, or on PATH; None when only imageio-ffmpeg's ffmpeg exists."""
    sibling = Path(ffmpeg_binary()).with_name("ffprobe")
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("ffprobe")


def _check_readable(path: str) -> None:
    """Fail early, naming the file, for the problems ffmpeg would report cryptically."""
    p = Path(path)
    if not p.exists():
        raise ExtractionError(f"{path}: file not found; check the path")
    if not p.is_file():
        raise ExtractionError(f"{path}: not a regular file; pass a media file, not a folder")
    if not os.access(p, os.R_OK):
        raise ExtractionError(f"{path}: unreadable (permission denied); fix the file's permissions")
    if p.stat().st_size == 0:
        raise ExtractionError(f"{path}: zero-length file; re-copy or re-export the clip")


def _rotation(stream: dict[str, Any]) -> int:
    """Display rotation in degrees (0, 90, 180, 270) from ffprobe's tags or side data."""
    angle = 0.0
    if "rotate" in stream.get("tags", {}):
        angle = float(stream["tags"]["rotate"])
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            angle = float(side["rotation"])
    return int(round(angle)) % 360


def _probe_ffprobe(path: str, ffprobe: str) -> dict[str, Any]:
    import ffmpeg

    try:
        info = ffmpeg.probe(path, cmd=ffprobe)
    except ffmpeg.Error as e:
        reason = _last_line(e.stderr)
        raise ExtractionError(
            f"{path}: ffmpeg cannot read it ({reason}); the file is corrupt or not a media file, re-export it"
        ) from e
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    # Cover art in audio files shows up as a one-frame video stream; it is not a video.
    video = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    durations = [info.get("format", {}).get("duration")] + [s.get("duration") for s in audio + video]
    duration = max((float(d) for d in durations if d not in (None, "N/A")), default=0.0)
    out: dict[str, Any] = {"duration": duration, "has_audio": bool(audio), "has_video": bool(video)}
    if video:
        v = video[0]
        w, h = int(v.get("width", 0)), int(v.get("height", 0))
        # ffmpeg autorotates on decode, so the frames come out with the display orientation.
        if _rotation(v) in (90, 270):
            w, h = h, w
        out.update(width=w, height=h)
    if audio:
        out["sample_rate"] = int(audio[0].get("sample_rate", 0) or 0)
    return out


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\S+.*?: Video: .*?(\d{2,5})x(\d{2,5})")
_AUDIO_RE = re.compile(r"Stream #\S+.*?: Audio: .*?(\d+) Hz")


def _probe_ffmpeg_banner(path: str) -> dict[str, Any]:
    """Fallback probe for imageio-ffmpeg's lone ffmpeg: parse the stream listing `ffmpeg -i` prints."""
    proc = subprocess.run([ffmpeg_binary(), "-hide_banner", "-i", path], capture_output=True, text=True,
                          errors="replace")
    text = proc.stderr
    if "Invalid data found" in text or ("Stream #" not in text):
        raise ExtractionError(
            f"{path}: ffmpeg cannot read it ({_last_line(text)}); the file is corrupt or not a media file, "
            "re-export it"
        )
    m = _DURATION_RE.search(text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else 0.0
    video = [v for v in _VIDEO_RE.finditer(text) if "attached pic" not in text[v.start():text.find("\n", v.start())]]
    audio = list(_AUDIO_RE.finditer(text))
    out: dict[str, Any] = {"duration": duration, "has_audio": bool(audio), "has_video": bool(video)}
    if video:
        w, h = int(video[0].group(1)), int(video[0].group(2))
        line = text[video[0].start():]
        if re.search(r"rotation of -?(90|270)", line.split("Stream #", 2)[1] if "Stream #" in line else ""):
            w, h = h, w
        out.update(width=w, height=h)
    if audio:
        out["sample_rate"] = int(audio[0].group(1))
    return out


def probe(path: str | os.PathLike) -> dict[str, Any]:
    """What a clip holds, without decoding it.

    Returns {"duration": seconds (float), "has_audio": bool, "has_video": bool} plus "width"/"height"
    (display orientation) when there is video and "sample_rate" when there is audio.
    Raises ExtractionError for a missing, unreadable, empty or corrupt file.
    """
    path = os.fspath(path)
    _check_readable(path)
    ffprobe = _ffprobe_binary()
    return _probe_ffprobe(path, ffprobe) if ffprobe else _probe_ffmpeg_banner(path)


def frame_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Output (width, height) after shrinking so the long side is at most `max_side`; never enlarges.

    Both sides are kept even because some scalers and the face models dislike odd sizes.
    """
    if not max_side or max(width, height) <= max_side:
        w, h = width, height
    else:
        scale = max_side / max(width, height)
        w, h = max(2, round(width * scale)), max(2, round(height * scale))
    return max(2, w - w % 2), max(2, h - h % 2)


def _last_line(stderr: bytes | str | None) -> str:
    if not stderr:
        return "no error output"
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"


def decode(
    path: str | os.PathLike,
    fps: float = DEFAULT_FPS,
    video: bool = True,
    max_side: int | None = DEFAULT_MAX_SIDE,
    threads: int = 0,
) -> Media:
    """Decode a clip once: 16 kHz mono float32 audio and RGB frames sampled at `fps`.

    Args:
        path: any file ffmpeg reads (mp4, mov, mpg, avi, mkv, webm, wav, mp3, ...).
        fps: frame sampling rate; frame i shows the clip at time i / fps (ffmpeg's fps filter picks the
            source frame nearest to that time).
        video: False skips the frames entirely (audio-only extraction is then much cheaper).
        max_side: frames larger than this on their long side are scaled down (aspect kept); None keeps size.
        threads: ffmpeg decoder threads (0 = ffmpeg's choice); pass 1 when running one clip per core.

    Returns:
        Media with audio (n_samples,) float32 in [-1, 1] at 16 kHz, frames (n_frames, H, W, 3) uint8 RGB
        and frame_times (n_frames,) seconds, or frames/frame_times None for audio-only files or video=False.

    Raises:
        NoAudioError (an ExtractionError) when the clip has no audio stream; ExtractionError when the file
        is missing, unreadable, empty, corrupt or decodes to nothing.
    """
    import ffmpeg

    path = os.fspath(path)
    info = probe(path)
    if not info["has_audio"]:
        raise NoAudioError(
            f"{path}: no audio stream; add an audio track (even silence) or skip this clip"
        )
    want_video = bool(video and info["has_video"])
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")

    inp = ffmpeg.input(path)
    audio_r, audio_w = os.pipe()
    try:
        audio_out = ffmpeg.output(inp["a:0"], f"pipe:{audio_w}", format="f32le", acodec="pcm_f32le",
                                  ac=1, ar=SAMPLE_RATE)
        outputs = [audio_out]
        width = height = 0
        if want_video:
            width, height = frame_size(info["width"], info["height"], max_side)
            frames_stream = inp["v:0"].filter("fps", fps=fps).filter("scale", width, height)
            outputs.insert(0, ffmpeg.output(frames_stream, "pipe:1", format="rawvideo", pix_fmt="rgb24"))
        args = ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-loglevel", "error",
                                                           "-threads", str(threads)).compile(
            cmd=ffmpeg_binary())
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(audio_w,))
    except BaseException:
        os.close(audio_r)
        os.close(audio_w)
        raise
    os.close(audio_w)  # only ffmpeg writes it now; EOF arrives when ffmpeg exits

    chunks: dict[str, bytes] = {}

    def drain(name: str, fd_or_file: Any) -> None:
        # Both pipes must be drained concurrently or ffmpeg blocks once a pipe buffer fills.
        if isinstance(fd_or_file, int):
            with os.fdopen(fd_or_file, "rb") as f:
                chunks[name] = f.read()
        else:
            chunks[name] = fd_or_file.read()

    readers = [threading.Thread(target=drain, args=("audio", audio_r), daemon=True),
               threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True)]
    for t in readers:
        t.start()
    video_bytes = proc.stdout.read() if proc.stdout else b""
    proc.wait()
    for t in readers:
        t.join()
    if proc.returncode != 0:
        raise ExtractionError(
            f"{path}: ffmpeg failed to decode it ({_last_line(chunks.get('stderr'))}); "
            "the file is corrupt or truncated, re-export it"
        )

    raw_audio = chunks.get("audio", b"")
    audio = np.frombuffer(raw_audio[: len(raw_audio) - len(raw_audio) % 4], dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise ExtractionError(f"{path}: zero-length audio (nothing decoded); the clip is empty or truncated")
    # Decoders can overshoot a little on clipped input; the features assume [-1, 1].
    np.clip(audio, -1.0, 1.0, out=audio)
    audio = np.nan_to_num(audio, copy=False)

    frames = frame_times = None
    if want_video:
        frame_bytes = width * height * 3
        n = len(video_bytes) // frame_bytes
        if n == 0:
            log.warning("%s: the video stream decoded to no frames; treating the clip as audio-only", path)
        else:
            frames = np.frombuffer(video_bytes[: n * frame_bytes], dtype=np.uint8).reshape(n, height, width, 3)
            frame_times = (np.arange(n, dtype=np.float64) / fps)
    duration = max(info["duration"], audio.size / SAMPLE_RATE)
    log.debug("%s: %.2fs audio, %s frames", path, audio.size / SAMPLE_RATE, 0 if frames is None else len(frames))
    return Media(path=path, audio=audio, sample_rate=SAMPLE_RATE, duration=float(duration),
                 frames=frames, frame_times=frame_times)
