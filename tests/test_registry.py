"""The extractor registry as the one source of extractor choices: a new extractor registered with one call
(here a tiny text extractor defined in this file) is offered by the CLI with its option, extracted by worker
processes with its spec in meta and a cache key of its own, and rebuilt by predict from a checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import extractors
from data.dataset import load_dataset
from core.errors import CheckpointError
from extractors import REGISTRY, Option, build_extractor, register_extractor, spec_of
from demo.clipgen import make_clip, tools_available

FAST = ["--visual", "none", "--audio-features", "mfcc"]
LINES = {"c0": [("I love this lovely day", 2.0), ("the food was awful", -2.0)],
         "c1": [("what a lovely surprise", 1.5), ("I hate waiting", -1.0)]}


class WordCount:
    """Per utterance: its number of words and how many of them are in a lexicon file. (n_utt, 2) float32."""

    name = "wordcount"
    modality = "text"
    dim = 2

    def __init__(self, lexicon: str | None = None) -> None:
        self.lexicon = None if lexicon is None else str(Path(lexicon).resolve())
        self.words = set(Path(self.lexicon).read_text(encoding="utf-8").split()) if self.lexicon else set()

    @property
    def params(self) -> dict:
        return {"lexicon": self.lexicon}

    def __call__(self, media, segments) -> np.ndarray:
        tokens = [s.text.lower().split() for s in segments]
        return np.array([[len(t), sum(w in self.words for w in t)] for t in tokens], dtype=np.float32).reshape(-1, 2)


def cli(*argv) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


@pytest.fixture
def wordcount():
    """WordCount registered with one call, with an option; unregistered afterwards."""
    register_extractor("text", "wordcount", WordCount, options=(Option("--wordcount-lexicon", "lexicon", "word list"),))
    yield
    REGISTRY["text"].pop("wordcount")
    extractors._ENTRIES["text"].pop("wordcount")


def test_registering_is_checked(wordcount) -> None:
    with pytest.raises(ValueError, match="already taken"):
        register_extractor("text", "wordcount", WordCount)
    with pytest.raises(ValueError, match="already taken"):
        register_extractor("audio", "other", WordCount, variants={"IS09": {}})  # a choice openSMILE has
    with pytest.raises(ValueError, match="clashes"):
        register_extractor("text", "other", WordCount, options=(Option("--glove", "path", "x"),))
    assert "other" not in REGISTRY["text"] and "other" not in REGISTRY["audio"]


def test_cli_offers_it_only_while_registered(wordcount) -> None:
    import cli as cli_module

    args = cli_module.build_parser().parse_args(["extract", "v", "--text", "wordcount", "--wordcount-lexicon", "w.txt"])
    assert (args.text, args.wordcount_lexicon) == ("wordcount", Path("w.txt"))
    REGISTRY["text"].pop("wordcount")
    with pytest.raises(SystemExit):
        cli_module.build_parser().parse_args(["extract", "v", "--text", "wordcount"])
    REGISTRY["text"]["wordcount"] = WordCount  # for the fixture's clean-up


@pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")
def test_round_trip_extract_cache_train_predict(wordcount, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "clips"
    for vid, lines in LINES.items():
        said = make_clip(folder / f"{vid}.wav", [t for t, _ in lines], gap=0.3)
        with open(folder / f"{vid}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("start", "end", "text", "sentiment")]
                                    + [(f"{s.start:.3f}", f"{s.end:.3f}", s.text, v) for s, (_, v) in zip(said, lines)])
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("love lovely\n", encoding="utf-8")
    out, cache = tmp_path / "ds.pkl", tmp_path / "cache"
    # option checks come from the registry too
    assert cli("extract", folder, "-o", out, "--text", "wordcount", "--wordcount-lexicon", tmp_path / "nope.txt") == 2
    assert cli("extract", folder, "-o", out, "--text", "glove", "--wordcount-lexicon", lexicon) == 2
    assert "--wordcount-lexicon only applies with the text extractor 'wordcount'" in capsys.readouterr().err

    # two workers: they build it from the factory the parent sends (their own registry does not have it)
    assert cli("extract", folder, "-o", out, "--text", "wordcount", "--wordcount-lexicon", lexicon, "--workers", "2",
               "--cache-dir", cache, *FAST) == 0
    ds = load_dataset(out)
    spec = ds["meta"]["features"]["text"]
    assert spec == {"name": "wordcount", "params": {"lexicon": str(lexicon.resolve())}, "dim": 2}
    np.testing.assert_array_equal(ds["text_feat"]["c0"], [[5, 2], [4, 0]])
    np.testing.assert_array_equal(ds["text_feat"]["c1"], [[4, 1], [3, 0]])

    # the cache key comes from the specs: the same choice is served from the cache, glove and another
    # lexicon are computed
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.extraction.cache import cache_key

    settings = ExtractSettings.create(text="wordcount", wordcount_lexicon=lexicon, cache_dir=cache, visual="none", audio="mfcc")
    again = extract_folder(folder, tmp_path / "again.pkl", settings, workers=1)
    assert (again.cached, again.computed) == (2, 0)
    settings = ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc")
    glove = extract_folder(folder, tmp_path / "glove.pkl", settings, workers=1)
    assert (glove.cached, glove.computed) == (0, 2)
    other = tmp_path / "other.txt"
    other.write_text("hate awful\n", encoding="utf-8")
    settings = ExtractSettings.create(text="wordcount", wordcount_lexicon=other, cache_dir=cache, visual="none", audio="mfcc")
    assert extract_folder(folder, tmp_path / "o.pkl", settings, workers=1).computed == 2
    def key(text_spec: dict) -> str:
        return cache_key("x", None, ExtractSettings(choices={}, specs={"text": text_spec}, asr={}), False)

    assert key(spec) != key(spec_of(build_extractor("text", "glove")))

    # predict rebuilds it from the checkpoint's spec: train a tiny model, then predict on a clip
    from model.config import TrainConfig
    from pipeline.prediction.predict import build_spec_extractors
    from pipeline.training.train import run_training

    ds["train"], ds["test"] = ["c0"], ["c1"]
    run = tmp_path / "run"
    run_training(ds, run, TrainConfig.for_task("regression", epochs=1, batch_size=2, valid_ratio=0.0, device="cpu"),
                 {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8})
    import torch

    ckpt_spec = torch.load(run / "checkpoint.pt", weights_only=True)["feature_spec"]
    assert ckpt_spec["text"] == spec
    rebuilt = build_spec_extractors(ckpt_spec, "checkpoint")
    assert isinstance(rebuilt["text"], WordCount) and spec_of(rebuilt["text"]) == spec
    capsys.readouterr()
    assert cli("predict", folder / "c1.wav", "--checkpoint", run, "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [u["text"] for u in result["utterances"]] == [t for t, _ in LINES["c1"]]
    assert all(-3 <= u["sentiment"] <= 3 for u in result["utterances"])
    REGISTRY["text"].pop("wordcount")
    with pytest.raises(CheckpointError, match="'wordcount' is not available here"):
        build_spec_extractors(ckpt_spec, "checkpoint")
    REGISTRY["text"]["wordcount"] = WordCount  # for the fixture's clean-up
