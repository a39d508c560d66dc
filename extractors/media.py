"""Media decoding: probe a clip, and decode it once into 16 kHz mono audio plus frames sampled at a fixed rate.

`decode` runs one ffmpeg process per clip that writes both outputs at the same time: the frames (the big
stream, raw RGB) to stdout and the audio (raw float32) to a second pipe that a thread drains, so the file is
read and demuxed once. It needs no separate ffprobe run: the frame size and duration come from ffmpeg's own
log, which saves about 60 ms a clip (ffmpeg's start-up dominates short clips). `probe` is there for callers
that want stream facts without decoding. Command lines are built with ffmpeg-python. The binary is apt's
`ffmpeg` when it is on PATH, else the static one in `imageio-ffmpeg` (which has no ffprobe: `probe` then parses
`ffmpeg -i`'s stream listing instead).

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

from core.errors import ExtractionError
from extractors.base import SAMPLE_RATE, Media

log = logging.getLogger(__name__)

# the files a clip may be: what `decode` reads, and what extraction, predict and the server accept
VIDEO_SUFFIXES = (".mp4", ".mov", ".mpg", ".mpeg", ".avi", ".mkv", ".webm", ".flv")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg")
CLIP_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES
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


def _as_url(path: str) -> str:
    """The path as an ffmpeg URL that no protocol prefix or leading dash can be mistaken in."""
    return "file:" + os.path.abspath(path)


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
        info = ffmpeg.probe(_as_url(path), cmd=ffprobe)
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
_SIZE_RE = re.compile(r", (\d{1,5})x(\d{1,5})")
_RATE_RE = re.compile(r"(\d+) Hz")


def _probe_ffmpeg_banner(path: str) -> dict[str, Any]:
    """Fallback probe for imageio-ffmpeg's lone ffmpeg: parse the stream listing `ffmpeg -i` prints."""
    proc = subprocess.run([ffmpeg_binary(), "-hide_banner", "-i", _as_url(path)], capture_output=True, text=True,
                          errors="replace")
    text = proc.stderr
    if "Stream #" not in text:
        raise ExtractionError(
            f"{path}: ffmpeg cannot read it ({_last_line(text)}); the file is corrupt or not a media file, "
            "re-export it"
        )
    m = _DURATION_RE.search(text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else 0.0
    # One block per stream: its "Stream #" line plus the indented metadata / side data lines under it.
    blocks = ["Stream #" + b for b in text.split("Stream #")[1:]]
    video = [b for b in blocks if ": Video: " in b.splitlines()[0] and "attached pic" not in b.splitlines()[0]]
    audio = [b for b in blocks if ": Audio: " in b.splitlines()[0]]
    out: dict[str, Any] = {"duration": duration, "has_audio": bool(audio), "has_video": bool(video)}
    size = _SIZE_RE.search(video[0].splitlines()[0]) if video else None
    if size:
        w, h = int(size.group(1)), int(size.group(2))
        if re.search(r"rotation of -?(90|270)\.", video[0]):  # autorotation swaps the sides on decode
            w, h = h, w
        out.update(width=w, height=h)
    rate = _RATE_RE.search(audio[0].splitlines()[0]) if audio else None
    if rate:
        out["sample_rate"] = int(rate.group(1))
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
    """The (width, height) `decode` gives a (width, height) video: shrunk so the long side is at most
    `max_side` (never enlarged), aspect kept, both sides rounded down to even numbers as ffmpeg's scaler does.
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


_OUTPUT_SIZE_RE = re.compile(r"Output #0.*?Video: rawvideo.*?, (\d{1,5})x(\d{1,5})", re.S)
_NO_STREAM = "does not contain any stream"


def _run_ffmpeg(path: str, fps: float, video: bool, max_side: int | None,
                threads: int) -> tuple[int, bytes, bytes, str]:
    """One ffmpeg process: frames (rgb24 rawvideo) to stdout, 16 kHz mono f32le audio to a second pipe.

    Returns (return code, video bytes, audio bytes, stderr text). stderr is at info level because the
    frame size (after scaling and autorotation) and the container duration are read from it; that saves
    a separate ffprobe process per clip, a large share of the time on short clips.
    """
    import ffmpeg

    # "file:" keeps a name with a colon ("take:2.mp4") from being read as a protocol; threads is an input option.
    inp = ffmpeg.input(_as_url(path), threads=threads)
    audio_r, audio_w = os.pipe()
    try:
        outputs = [ffmpeg.output(inp["a:0"], f"pipe:{audio_w}", format="f32le", acodec="pcm_f32le", ac=1,
                                 ar=SAMPLE_RATE)]
        if video:
            side = f"min(iw\\,{max_side})" if max_side else "iw"
            side_h = f"min(ih\\,{max_side})" if max_side else "ih"
            # Shrink (never enlarge) to fit max_side x max_side keeping the aspect, with even sides.
            vf = (f"fps={fps},scale=w='{side}':h='{side_h}':force_original_aspect_ratio=decrease:"
                  "force_divisible_by=2")
            # "V" skips cover art (attached pictures); "?" lets audio-only files through to the retry below.
            outputs.insert(0, ffmpeg.output(inp["V:0?"], "pipe:1", format="rawvideo", pix_fmt="rgb24", vf=vf))
        args = ffmpeg.merge_outputs(*outputs).compile(cmd=ffmpeg_binary())
        # ffmpeg-python appends global options after the outputs, where ffmpeg warns about them: put them first.
        args = [args[0], "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", *args[1:]]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(audio_w,))
    except BaseException:
        os.close(audio_r)
        os.close(audio_w)
        raise
    os.close(audio_w)  # only ffmpeg holds it now: EOF arrives when ffmpeg exits

    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        # All pipes are drained at once or ffmpeg blocks when one pipe's buffer fills.
        with stream:
            chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=("audio", os.fdopen(audio_r, "rb")), daemon=True),
               threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True)]
    for t in readers:
        t.start()
    try:
        video_bytes = proc.stdout.read() if proc.stdout else b""
    except BaseException:  # e.g. MemoryError or Ctrl-C: do not leave ffmpeg running
        proc.kill()
        raise
    finally:
        proc.wait()
    for t in readers:
        t.join()
    return proc.returncode, video_bytes, chunks.get("audio", b""), chunks.get("stderr", b"").decode("utf-8", "replace")


def _errors_only(stderr: str) -> str:
    """The last line of ffmpeg's log that is not stream information."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(" ")
             and not ln.startswith(("Input #", "Output #", "Stream mapping", "Press [q]"))]
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
        max_side: frames larger than this on their long side are scaled down (aspect kept, sides even);
            None keeps the size.
        threads: ffmpeg decoder threads (0 = ffmpeg's choice); pass 1 when running one clip per core.

    Returns:
        Media with audio (n_samples,) float32 in [-1, 1] at 16 kHz, frames (n_frames, H, W, 3) uint8 RGB
        (read-only) and frame_times (n_frames,) seconds, or frames/frame_times None for audio-only files
        or video=False. duration is the container's, or the audio's length when that is longer.

    Raises:
        NoAudioError (an ExtractionError) when the clip has no audio stream; ExtractionError when the file
        is missing, unreadable, empty, corrupt or decodes to nothing.
    """
    path = os.fspath(path)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    _check_readable(path)
    rc, video_bytes, raw_audio, stderr = _run_ffmpeg(path, fps, video, max_side, threads)
    if rc != 0 and video and _NO_STREAM in stderr:
        # An audio-only file: the optional video map produced an empty output, which ffmpeg refuses.
        video = False
        rc, video_bytes, raw_audio, stderr = _run_ffmpeg(path, fps, False, max_side, threads)
    if rc != 0:
        if "matches no streams" in stderr and "0:a:0" in stderr:
            raise NoAudioError(f"{path}: no audio stream; add an audio track (even silence) or skip this clip")
        raise ExtractionError(
            f"{path}: ffmpeg cannot decode it ({_errors_only(stderr)}); the file is corrupt, truncated or not "
            "a media file, re-export it"
        )

    audio = np.frombuffer(raw_audio[: len(raw_audio) - len(raw_audio) % 4], dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise ExtractionError(f"{path}: zero-length audio (nothing decoded); the clip is empty or truncated")
    # Decoders can overshoot a little on clipped input; the features assume [-1, 1].
    np.clip(audio, -1.0, 1.0, out=audio)
    audio = np.nan_to_num(audio, copy=False)

    frames = frame_times = None
    if video and video_bytes:
        size = _OUTPUT_SIZE_RE.search(stderr)
        if size is None:
            raise ExtractionError(f"{path}: could not read ffmpeg's frame size; report this with the ffmpeg version")
        width, height = int(size.group(1)), int(size.group(2))
        n = len(video_bytes) // (width * height * 3)
        if n:
            frames = np.frombuffer(video_bytes, dtype=np.uint8, count=n * width * height * 3)
            frames = frames.reshape(n, height, width, 3)  # a view: no copy of what may be hundreds of MB
            frame_times = np.arange(n, dtype=np.float64) / fps
    listed = stderr.split("Output #0")[0]
    if video and frames is None and any("Video:" in ln and "attached pic" not in ln for ln in listed.splitlines()):
        log.warning("%s: the video stream decoded to no frames; treating the clip as audio-only", path)
    m = _DURATION_RE.search(stderr)
    container = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else 0.0
    duration = max(container, audio.size / SAMPLE_RATE)
    log.debug("%s: %.2fs audio, %s frames", path, audio.size / SAMPLE_RATE, 0 if frames is None else len(frames))
    return Media(path=path, audio=audio, sample_rate=SAMPLE_RATE, duration=float(duration),
                 frames=frames, frame_times=frame_times)
