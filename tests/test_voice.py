"""The voice that has to transfer: Whisper encoder features (extractors.audio_whisper) and the voice corpora's
augmentation, cuts and dataset (pipeline.release.voice), on real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demo.clipgen import make_clip, tools_available
from tests.synthetic import SHARED_DATA

needs_tools = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")
RAVDESS = SHARED_DATA / "ravdess"


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[np.ndarray, list]:
    if not tools_available():
        pytest.skip("needs ffmpeg and espeak-ng on PATH")
    from extractors.media import decode

    path = tmp_path_factory.mktemp("voice") / "said.wav"
    segs = make_clip(path, ["I cannot believe you did that", "well that is fine by me"], gap=0.5)
    return decode(path, video=False).audio, segs


@needs_tools
def test_whisper_audio_features(speech):
    from extractors import build_extractor
    from extractors.base import Media, Segment, spec_of

    audio, segs = speech
    ex = build_extractor("audio", "whisper")
    media = Media(path="said.wav", audio=audio, sample_rate=16000, duration=len(audio) / 16000)
    rows = ex(media, segs + [Segment(0.10, 0.12, "A", "")])  # the last one is 20 ms: widened to min_seconds
    assert rows.shape == (3, 768) and rows.dtype == np.float32 and np.isfinite(rows).all()
    assert (rows[:, 384:] >= 0).all()  # the second half are standard deviations
    np.testing.assert_array_equal(rows, ex(media, segs + [Segment(0.10, 0.12, "A", "")]))  # deterministic
    assert not np.allclose(rows[0], rows[1])
    spec = spec_of(ex)
    assert spec["dim"] == 768 and spec["params"]["model"] == "tiny.en" and spec["params"]["pooling"] == "mean+std"
    from extractors import build_from_spec

    np.testing.assert_array_equal(build_from_spec("audio", spec)(media, segs), rows[:2])


@needs_tools
@pytest.mark.parametrize("codec", ["mp3", "aac", "opus", "gsm"])
def test_a_codec_round_trip_keeps_the_speech(speech, codec):
    from pipeline.release.voice import _through_codec

    audio, _ = speech
    back = _through_codec(audio, codec)
    assert back.shape == audio.shape and back.dtype == np.float32
    # the same speech, degraded: correlated envelopes, not identical samples
    env = [np.convolve(np.abs(x), np.ones(800) / 800, mode="valid")[::400] for x in (audio, back)]
    assert np.corrcoef(*env)[0, 1] > 0.8
    assert not np.allclose(back, audio, atol=1e-3)


@needs_tools
def test_augmentation_is_seeded_and_keeps_the_length(speech):
    from pipeline.release.voice import augment, cuts_of

    audio, _ = speech
    a, recipe_a = augment(audio, np.random.default_rng(7))
    b, recipe_b = augment(audio, np.random.default_rng(7))
    assert recipe_a == recipe_b and np.array_equal(a, b) and a.shape == audio.shape
    assert -12 <= recipe_a["gain_db"] <= 12
    recipes = [augment(audio, np.random.default_rng(s))[1] for s in range(12)]
    assert {r.get("codec", "none") for r in recipes} - {"none"}  # codecs are drawn
    assert any("snr_db" in r for r in recipes) and all(10 <= r["snr_db"] <= 30 for r in recipes if "snr_db" in r)
    cuts = cuts_of(4.0, (0.5, 3.0), np.random.default_rng(0))
    assert cuts["whisper"] == (0.5, 3.0) and cuts["whole"] == (0.0, 4.0)
    start, end = cuts["jitter"]
    assert abs(start - 0.5) <= 0.3 and abs(end - 3.0) <= 0.3 and end - start >= 0.5


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"RAVDESS not at {RAVDESS}")
def test_voice_dataset_from_real_recordings(tmp_path):
    """Two RAVDESS actors' clips (one training actor, one held out): training clips give (1 + AUGMENTED) x 3
    conversations, test clips only their original recording; a speaker's copies share one validation group."""
    from data.dataset import validate_dataset
    from pipeline.release.voice import AUGMENTED, CUTS, clip_features, voice_clips, voice_dataset
    from pipeline.training.train import split_validation

    clips = [c for c in voice_clips(SHARED_DATA) if c.corpus == "ravdess" and c.speaker in ("actor01", "actor19")]
    clips = [c for c in clips if c.path.stem.startswith("03-01-05-02-01-01")]  # strong anger, statement 1, first take
    assert [c.split for c in clips] == ["train", "test"]
    for c in clips:
        clip_features(c, tmp_path / f"{c.key}.npz")
    ds = voice_dataset(clips, tmp_path, audio="whisper", cuts_in_test=("whisper", "whole"))
    validate_dataset(ds)
    assert len(ds["train"]) == (1 + AUGMENTED) * len(CUTS) and len(ds["test"]) == 2
    assert {ds["meta"]["groups"][v] for v in ds["train"]} == {"ravdess/actor01"}
    vid = ds["train"][0]
    assert ds["labels"][vid][0, 3] == 1.0 and np.isnan(ds["labels"][vid][0, 0])  # anger (column 3); sentiment unknown
    assert ds["audio_feat"][vid].shape == (1, 768) and not ds["present"][vid][0, 0]  # text absent without an extractor
    train, valid = split_validation(ds["train"], 0.5, 0, ds["meta"]["groups"])
    assert not train or not valid  # one speaker: never split across
