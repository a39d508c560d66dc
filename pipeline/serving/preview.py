"""Browser-ready previews of clips the browser cannot play (POST /api/preview): ffmpeg re-encodes the clip as WebM.

    command = preview_command("talk.flv", "preview.webm", has_video=True)
    await run_preview(command, time_limit=300, cancelled=request.is_disconnected, running=app.state.previews)

Every clip the server can read plays in the page: the page plays the original file when the browser can (H.264 mp4,
WebM, mp3...), and asks for a preview when it cannot (a CREMA-D .flv, GRID's MPEG-1 .mpg, an mp4 of MPEG-4 Part 2 or
HEVC video, which Chromium plays as sound behind a black box). The preview is VP8 video (the long side at most 640
pixels, never enlarged) and Opus sound in WebM, codecs every current browser decodes without licences; a clip
without a video stream gets its sound only (audio/webm), so the page can say the clip has no video. ffmpeg's
realtime VP8 settings make it quick: 0.1-0.4 s for a 2-3 s clip, on one thread.

ffmpeg runs in its own process group with the server's time limit; a client that leaves, or the server stopping,
kills it (`running` holds the processes in flight so that a signal handler can reach them).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any, Awaitable, Callable

from pipeline.serving.worker import Stopped, TimeLimit

MAX_SIDE = 640
POLL_S = 0.5


def preview_command(src: str | Path, dst: str | Path, has_video: bool) -> list[str]:
    """The ffmpeg command writing `src`'s first video stream (VP8) and first audio stream (Opus) to WebM `dst`; sound
    only when the clip has no video."""
    from extractors.media import ffmpeg_binary

    head = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", "file:" + os.path.abspath(src), "-sn", "-dn"]
    sound = ["-c:a", "libopus", "-b:a", "96k"]
    if not has_video:
        return [*head, "-vn", "-map", "0:a:0", *sound, "-f", "webm", str(dst)]
    fit = (f"scale='min({MAX_SIDE},iw)':'min({MAX_SIDE},ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,"
           "format=yuv420p")
    return [*head, "-map", "0:v:0", "-map", "0:a:0?", "-vf", fit, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
            "-b:v", "1M", "-threads", "1", *sound, "-f", "webm", str(dst)]


def kill_group(proc: Any) -> None:
    """SIGKILL a process started in its own session, and whatever it started. Safe in a signal handler."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_preview(command: list[str], *, time_limit: float | None, cancelled: Callable[[], Awaitable[bool]] | None = None,
                      running: set | None = None, stopping: Callable[[], bool] | None = None) -> bool:
    """Run the preview command; True when it wrote its file, False when the client left (`cancelled` became true).
    Raises TimeLimit past `time_limit` seconds, Stopped when `stopping()` turns true, RuntimeError with ffmpeg's
    last line when it fails."""
    proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, start_new_session=True)
    if running is not None:
        running.add(proc)
    loop = asyncio.get_running_loop()
    deadline = None if time_limit is None else loop.time() + time_limit
    errors = asyncio.ensure_future(proc.stderr.read())  # type: ignore[union-attr]
    try:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), POLL_S)
                break
            except asyncio.TimeoutError:
                pass
            if stopping is not None and stopping():
                kill_group(proc)
                raise Stopped("the server is stopping")
            if deadline is not None and loop.time() > deadline:
                kill_group(proc)
                raise TimeLimit(f"making the preview took longer than the server's limit of {time_limit:g} s")
            if cancelled is not None and await cancelled():
                kill_group(proc)
                return False
        if stopping is not None and stopping():
            raise Stopped("the server is stopping")
        if proc.returncode != 0:
            text = (await errors).decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg could not convert it ({text[-1] if text else f'exit status {proc.returncode}'})")
        return True
    finally:
        if proc.returncode is None:
            kill_group(proc)
            await proc.wait()
        errors.cancel()
        if running is not None:
            running.discard(proc)


__all__ = ["MAX_SIDE", "kill_group", "preview_command", "run_preview"]
