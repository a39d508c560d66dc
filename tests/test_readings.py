"""Each modality's emotion reading and their fusion (pipeline.prediction.readings), against hand-computed cases;
the formats that show them (table, CSV); and, on a trained 7-way model, predict's readings through the real
network: the words reading is the network hearing the text alone."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from model.tasks import EMOTION_CLASSES
from pipeline.prediction.readings import (FusionRule, expected_calibration_error, fit_temperature, read_emotions, temper)

C = len(EMOTION_CLASSES)


def one_hot_ish(k: int, top: float) -> np.ndarray:
    p = np.full(C, (1 - top) / (C - 1))
    p[k] = top
    return p


def test_face_reading_maps_the_fer_probabilities_onto_the_classes():
    from extractors.visual_facemesh import EMOTIONS as FER

    rows = np.zeros((3, 19), np.float32)
    rows[0, 11 + FER.index("happy")] = 0.7
    rows[0, 11 + FER.index("sad")] = 0.3
    rows[1, 11 + FER.index("angry")] = 1.0
    face = FusionRule().face_reading(rows, np.array([True, True, False]))
    assert face[0, EMOTION_CLASSES.index("happiness")] == pytest.approx(0.7)
    assert face[0, EMOTION_CLASSES.index("sadness")] == pytest.approx(0.3)
    assert face[1, EMOTION_CLASSES.index("anger")] == pytest.approx(1.0)
    assert np.isnan(face[2]).all()  # no face in that utterance: no reading


def test_fusion_is_a_weighted_product_and_falls_back_where_a_modality_is_absent():
    rule = FusionRule(face_weight=0.5)
    network = np.stack([one_hot_ish(0, 0.6), one_hot_ish(1, 0.9), np.full(C, np.nan)])
    face = np.stack([one_hot_ish(3, 0.8), np.full(C, np.nan), one_hot_ish(2, 0.7)])
    fused = rule.fuse(network, face)
    expect = network[0] * np.sqrt(face[0])
    np.testing.assert_allclose(fused[0], expect / expect.sum())
    np.testing.assert_allclose(fused[1], network[1])  # no face: the network's reading
    np.testing.assert_allclose(fused[2], face[2])  # only the face
    np.testing.assert_allclose(rule.fuse(network, None), network)
    assert fused[0].sum() == pytest.approx(1.0)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, C)) * 3
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(C, p=p) for p in calibrated])
    overconfident = temper(calibrated, 1 / 2.5)  # sharpened: what an overfitted network says
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    before = expected_calibration_error(overconfident, labels)
    after = expected_calibration_error(temper(overconfident, t), labels)
    assert after < before / 3 and after < 0.03
    np.testing.assert_allclose(temper(calibrated, 1.0), calibrated)


def test_what_the_network_reads_with_a_voice_has_its_own_temperature():
    sharp = np.stack([one_hot_ish(3, 0.9), one_hot_ish(0, 0.9)])
    rule = FusionRule(temperature=1.0, voice_temperature=3.0)
    out = rule.calibrate(sharp, np.array([True, False]))
    np.testing.assert_allclose(out[0], temper(sharp[:1], 3.0)[0])  # heard a voice: softened
    np.testing.assert_allclose(out[1], sharp[1])  # words alone: as trained
    np.testing.assert_allclose(rule.calibrate(sharp, True), temper(sharp, 3.0))
    assert out[0].max() < 0.5 and np.array_equal(out.argmax(axis=1), sharp.argmax(axis=1))
    # a rule from before the voice had its own temperature (no key) calibrates every row alike
    old = FusionRule.from_checkpoint({"fusion": {"temperature": 2.0}})
    np.testing.assert_allclose(old.calibrate(sharp, np.array([True, False])), temper(sharp, 2.0))

    def run(view):  # a stand-in network: confident anger whatever it hears
        return np.tile(one_hot_ish(3, 0.9), (len(view["present"]), 1))

    present = np.array([[True, True, False], [True, False, False]])
    view = {"text": np.zeros((2, 4)), "audio": np.zeros((2, 4)), "visual": np.zeros((2, 0)), "present": present}
    read = read_emotions(run, view, ["text", "audio"], rule)
    assert read["readings"]["words"][0].max() == pytest.approx(0.9)  # words alone: temperature 1
    assert read["readings"]["voice"][0].max() == pytest.approx(out[0].max())  # the voice alone: voice_temperature
    assert read["fused"][0].max() == pytest.approx(out[0].max()) and read["fused"][1].max() == pytest.approx(0.9)


def test_uncertain_says_why():
    rule = FusionRule(min_confidence=0.4, disagree_confidence=0.6)
    fused = np.stack([one_hot_ish(0, 0.8), one_hot_ish(1, 0.3), one_hot_ish(3, 0.7)])
    readings = {"words": np.stack([one_hot_ish(0, 0.9)] * 3), "voice": np.stack([one_hot_ish(0, 0.7), one_hot_ish(1, 0.5), one_hot_ish(3, 0.95)])}
    why = rule.uncertain(fused, readings)
    assert why[0] is None
    assert why[1] == "low confidence (0.30 < 0.4)"
    assert why[2] == "words says neutral, voice says anger"


def test_read_emotions_runs_the_network_once_per_modality():
    """With a stand-in network that reports which modalities it was given, each reading sees one of them."""
    seen = []

    def run(view):
        seen.append(view["present"].copy())
        p = np.full((len(view["present"]), C), 0.01)
        p[:, 0] = 1 + view["present"][:, 0]  # a word-driven neutral
        p[:, 3] = 1 + 2 * view["present"][:, 1]  # a voice-driven anger
        return p / p.sum(axis=1, keepdims=True)

    present = np.array([[True, True, False], [True, False, False]])
    view = {"text": np.zeros((2, 4)), "audio": np.zeros((2, 4)), "visual": np.zeros((2, 0)), "present": present}
    out = read_emotions(run, view, ["text", "audio"], FusionRule())
    assert [p.tolist() for p in seen] == [present.tolist(), [[True, False, False], [True, False, False]], [[False, True, False], [False, False, False]]]
    assert np.argmax(out["readings"]["words"][0]) == 0 and np.argmax(out["readings"]["voice"][0]) == 3
    assert np.isnan(out["readings"]["voice"][1]).all()  # the second utterance has no audio: no voice reading
    assert "face" not in out["readings"]


def test_table_and_csv_show_each_reading():
    from pipeline.prediction.output import format_csv, format_table

    probs = dict(zip(EMOTION_CLASSES, one_hot_ish(3, 0.5).round(3)))
    utt = {"start": 0.0, "end": 1.0, "speaker": "A", "text": "calm down", "modalities": ["text", "audio", "visual"], "sentiment": -0.5,
           "label": "negative", "emotions": {}, "emotion": "anger", "emotion_probs": probs, "uncertain": True,
           "uncertain_why": "words says neutral, voice says anger",
           "readings": {"words": {"emotion": "neutral", "probs": dict(zip(EMOTION_CLASSES, one_hot_ish(0, 0.9).round(3)))},
                        "voice": {"emotion": "anger", "probs": dict(zip(EMOTION_CLASSES, one_hot_ish(3, 0.8).round(3)))}}}
    result = {"clip": "c.mp4", "duration": 1.0, "transcript": None, "models": {}, "modalities": ["text", "audio", "visual"], "utterances": [utt]}
    table = format_table([result])
    header = next(line for line in table.splitlines() if "words" in line).split()
    assert header == ["start", "end", "speaker", "text", "sentiment", "label", "words", "voice", "emotion"]
    row = next(line for line in table.splitlines() if "calm down" in line)
    assert "neutral 0.90" in row and "anger 0.80" in row and "anger 0.50 ?" in row
    assert "uncertain" in table.splitlines()[-1]
    rows = list(csv.DictReader(io.StringIO(format_csv([result]))))
    assert rows[0]["words"] == "neutral" and float(rows[0]["words_prob"]) == pytest.approx(0.9)
    assert rows[0]["voice"] == "anger" and rows[0]["uncertain"] == "True" and rows[0]["uncertain_why"].startswith("words says")
    assert "face" not in rows[0]


@pytest.fixture(scope="module")
def seven_way(tmp_path_factory):
    """A 7-way emotion model trained for one epoch (tiny dims) on generated clips, words + voice only, given the
    shipped model's kind of fusion rule (a calibration temperature and the facemesh face expert)."""
    from demo.clipgen import astronaut, make_clip, tools_available

    if not tools_available():
        pytest.skip("needs ffmpeg and espeak-ng on PATH")
    from extractors import build_extractor
    from extractors.base import spec_of
    from model.checkpoint import read_checkpoint, save_checkpoint
    from model.config import TrainConfig
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.training.train import run_training

    root = tmp_path_factory.mktemp("seven")
    lines = [("I love this wonderful day", "happiness"), ("I hate this and I am furious", "anger"), ("the bus leaves at nine", None),
             ("I miss them and I feel so sad", "sadness")]
    emotions = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
    for i in range(4):
        said = lines[i:] + lines[:i]
        segs = make_clip(root / "corpus" / f"c{i}.wav", [t for t, _ in said], gap=0.3)
        rows = ["start,end,speaker,text," + ",".join(emotions)]
        rows += [f"{s.start:.3f},{s.end:.3f},A,{t}," + ",".join("1" if e == emo else "0" for emo in emotions) for s, (t, e) in zip(segs, said)]
        (root / "corpus" / f"c{i}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    settings = ExtractSettings.create(audio="mfcc", visual="none", cache_dir=root / "cache")
    extract_folder(root / "corpus", root / "data.pkl", settings, workers=1, test_ratio=0.25)
    tiny = {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8}
    run_training(root / "data.pkl", root / "run", TrainConfig.for_task("emotion-class", epochs=1, batch_size=4, valid_ratio=0.0,
                                                                       device="cpu"), tiny)
    ckpt = read_checkpoint(root / "run" / "checkpoint.pt")
    ckpt["fusion"] = FusionRule(temperature=1.5, face=spec_of(build_extractor("visual", "facemesh"))).to_dict()
    save_checkpoint(ckpt, root / "fused" / "checkpoint.pt")
    face_clip = root / "clips" / "talk.mp4"
    make_clip(face_clip, ["what a lovely day", "leave me alone"], astronaut(), gap=0.4)
    return {"root": root, "plain": root / "run", "fused": root / "fused", "face_clip": face_clip, "voice_clip": root / "corpus" / "c0.wav"}


def test_predict_shows_each_modality_and_fuses_the_face(seven_way):
    from pipeline.prediction.predict import Predictor

    fused = Predictor(seven_way["fused"])
    result = fused.predict(seven_way["face_clip"])
    assert result["modalities"] == ["text", "audio", "visual"]  # the face expert makes the clip's face count
    for u in result["utterances"]:
        assert set(u["readings"]) == {"words", "voice", "face"} and u["modalities"] == ["text", "audio", "visual"]
        probs = np.array(list(u["emotion_probs"].values()))
        assert probs.sum() == pytest.approx(1, abs=1e-3) and u["emotion"] == max(u["emotion_probs"], key=u["emotion_probs"].get)
        assert isinstance(u["uncertain"], bool) and (u["uncertain_why"] is None) == (not u["uncertain"])
    # the words reading is the same network hearing the text alone: what --modalities text predicts
    words_only = Predictor(seven_way["fused"], modalities=["text"]).predict(seven_way["face_clip"])
    assert words_only["modalities"] == ["text"]
    for u, w in zip(result["utterances"], words_only["utterances"]):
        assert set(w["readings"]) == {"words"} and w["emotion_probs"] == pytest.approx(u["readings"]["words"]["probs"], abs=2e-4)
    # without the face: the fused reading is the network's words + voice, calibrated
    no_face = Predictor(seven_way["fused"], modalities=["text", "audio"]).predict(seven_way["face_clip"])
    assert no_face["modalities"] == ["text", "audio"] and all("face" not in u["readings"] for u in no_face["utterances"])
    assert [u["emotion_probs"] for u in no_face["utterances"]] != [u["emotion_probs"] for u in result["utterances"]]


def test_a_clip_without_video_keeps_the_words_and_voice(seven_way):
    """An audio-only clip: no face reading, nothing invented; the visual modality is not listed for it."""
    from pipeline.prediction.predict import Predictor

    result = Predictor(seven_way["fused"]).predict(seven_way["voice_clip"])
    assert result["utterances"]
    for u in result["utterances"]:
        assert set(u["readings"]) == {"words", "voice"} and "visual" not in u["modalities"]


def test_calibration_softens_the_network_as_the_rule_says(seven_way):
    """The plain checkpoint (no rule: temperature 1) and the fused one (T = 1.5) differ by exactly the temperature."""
    from pipeline.prediction.predict import Predictor

    plain = Predictor(seven_way["plain"], modalities=["text", "audio"]).predict(seven_way["voice_clip"])
    soft = Predictor(seven_way["fused"], modalities=["text", "audio"]).predict(seven_way["voice_clip"])
    for a, b in zip(plain["utterances"], soft["utterances"]):
        p = np.array(list(a["emotion_probs"].values()))
        np.testing.assert_allclose(temper(p[None], 1.5)[0], list(b["emotion_probs"].values()), atol=2e-4)


def test_bad_input_marks_the_missing_modality_absent(seven_way, tmp_path):
    """A face lost half-way, a mono 8 kHz telephone recording, a silent clip and music only: each gives a result
    in which what is missing is absent, never an invented reading."""
    import subprocess
    import wave

    from demo.clipgen import astronaut, make_clip
    from pipeline.prediction.predict import Predictor

    predictor = Predictor(seven_way["fused"])
    grey = np.full((240, 240, 3), 128, np.uint8)
    make_clip(tmp_path / "half.mp4", ["I am really happy to see you", "now I am leaving the room"], [astronaut(), grey], gap=0.5)
    half = predictor.predict(tmp_path / "half.mp4")["utterances"]
    assert [sorted(u["readings"]) for u in half] == [["face", "voice", "words"], ["voice", "words"]]
    assert [u["modalities"] for u in half] == [["text", "audio", "visual"], ["text", "audio"]]

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(seven_way["voice_clip"]), "-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw",
                    str(tmp_path / "phone.wav")], check=True)
    phone = predictor.predict(tmp_path / "phone.wav")["utterances"]
    assert phone and all(sorted(u["readings"]) == ["voice", "words"] and u["emotion"] for u in phone)

    sr = 16000
    t = np.arange(6 * sr) / sr
    music = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330)) * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 2 * t)))
    for name, signal in (("silent", np.zeros(3 * sr)), ("music", music)):
        with wave.open(str(tmp_path / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes((np.clip(signal, -1, 1) * 32767).astype(np.int16).tobytes())
        result = predictor.predict(tmp_path / f"{name}.wav")
        assert result["utterances"] == [] and "no speech" in result["note"], name
