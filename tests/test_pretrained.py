"""The shipped model (model/pretrained): the committed weights load, match what their model card and report say
they are, stay small, and predict on a real talking-face clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.synthetic import SHARED_DATA

SHIPPED = Path(__file__).resolve().parents[1] / "model" / "pretrained"
CREMAD = sorted((SHARED_DATA / "cremad").glob("1001_DFA_*.flv"))


def test_committed_weights_load_and_match_the_card():
    from model.checkpoint import load_model
    from model.network import Ensemble
    from pipeline.prediction.predict import check_spec

    report = json.loads((SHIPPED / "report.json").read_text())
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    total = 0
    for kind, task in (("sentiment", "regression"), ("emotion", "emotion-class")):
        path = SHIPPED / kind / "checkpoint.pt"
        total += path.stat().st_size
        model, ckpt = load_model(path)
        assert isinstance(model, Ensemble) and ckpt["task"] == task and ckpt["dtype"] == "float16"
        assert ckpt["seeds"] == report["recipe"]["seeds"] and len(model.members) == len(report["recipe"]["seeds"])
        spec = check_spec(ckpt)  # reproducible from a clip with this installation's extractors
        assert spec["text"]["name"] == report["recipe"]["text"] == "minilm"
        assert spec["visual"]["name"] == "none"  # no labelled faces: the network has no visual input, as the card says
        if kind == "emotion":  # the face is a separate expert, fused by the rule the card states
            fusion = ckpt["fusion"]
            assert fusion["face"]["name"] == "facemesh" and fusion["face_weight"] == report["recipe"]["fusion"]["face_weight"]
            assert f"face^{fusion['face_weight']:g}" in card
            assert fusion["temperature"] == report["calibration"]["temperature"] and f"{fusion['temperature']:.2f}" in card
            assert fusion["voice_temperature"] == report["calibration"]["voice_temperature"] and f"{fusion['voice_temperature']:.2f} where it" in card
        assert kind == "sentiment" or ckpt["feature_spec"]["asr"]["name"] == "whisper"
        assert ckpt["model_config"]["d_hidden"] == report["recipe"]["hidden"]
        assert report[kind]["task"] == task
        for corpus, figures in report[kind]["corpora"].items():  # the card shows the report's figures
            key = "f1_weighted" if task == "emotion-class" else "mae"
            assert f"{figures['model'][key]:.{3 if key == 'mae' else 1}f}" in card, (kind, corpus)
    assert (SHIPPED / "emotion" / "checkpoint.pt").exists()
    assert "**visual**: the network has none" in card and "CC BY-NC-SA 4.0" in card and "GPL-3.0" in card
    assert "URDU" in card and "research use only" in card
    assert total < 30e6


def test_the_card_says_what_its_tables_hold(tmp_path):
    """The committed card is what the generator writes from the committed report; its CREMA-D table has the 12 clips
    of the report, and its counts of right answers are the table's."""
    from pipeline.release.model_card import write_model_card

    report = json.loads((SHIPPED / "report.json").read_text())
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert write_model_card(report, tmp_path / "card.md").read_text() == card
    crema = report["clips"]["cremad"]
    assert len(crema) == 12 and card.count("| 100") == 12  # 1001's talking-face videos, 1002's voice recordings
    right = sum(r["predicted"] == r["acted"] for r in crema)
    assert f"**{right} of 12** right with everything" in card
    assert "neutral when |score| < 0.5" in card
    for r in report["clips"]["calm"]:  # the target the card states: calm speech never alarming above 0.6
        assert r["alarm"] == (r["alarming_probability"] > 0.6)


@pytest.mark.skipif(not CREMAD, reason="../shared/data/cremad not present")
def test_shipped_model_predicts_on_a_real_talking_face_clip():
    from model.checkpoint import default_checkpoint
    from pipeline.prediction.predict import Predictor

    assert default_checkpoint() == SHIPPED
    result = Predictor().predict(CREMAD[0])
    (u,) = [u for u in result["utterances"] if u["text"]]
    assert "jacket" in u["text"].lower() and result["transcript"] == "whisper tiny.en (automatic)"
    assert u["emotion"] in u["emotion_probs"] and abs(sum(u["emotion_probs"].values()) - 1) < 1e-3
    assert -3 <= u["sentiment"] <= 3 and u["label"] in ("positive", "neutral", "negative")
    assert u["modalities"] == ["text", "audio", "visual"] and sorted(u["readings"]) == ["face", "voice", "words"]
    (row,) = [r for r in json.loads((SHIPPED / "report.json").read_text())["clips"]["cremad"] if r["clip"] == CREMAD[0].name]
    assert (u["readings"]["face"]["emotion"], u["emotion"]) == (row["face_only"], row["predicted"])  # as the card says
