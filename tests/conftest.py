"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The MiniLM text extractor with its model loaded: once per test session (~5 s)."""
    from extractors import build_extractor

    extractor = build_extractor("text", "minilm")
    _ = extractor.model
    return extractor


@pytest.fixture(scope="session")
def served_models(tmp_path_factory):
    """For the server's tests (test_serve*.py): three labelled generated clips extracted with the default extractors,
    a regression and a happiness model trained for one epoch with tiny dims, a loaded Predictor on them, and a
    held-out ~6 s two-speaker clip with its .srt. Skipped without ffmpeg and espeak-ng, like the other clip tests."""
    from demo.clipgen import astronaut, make_clip, pyfeat_face, tools_available

    if not tools_available():
        pytest.skip("needs ffmpeg and espeak-ng on PATH")
    from model.config import TrainConfig
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.prediction.predict import Predictor
    from pipeline.training.train import run_training

    lines = [("I love this wonderful day", 2.5, 3.0), ("this is terrible and I hate it", -2.5, 0.0),
             ("what a lovely surprise", 2.0, 2.0), ("I feel awful and sad", -2.0, 0.0)]
    target = [("ALICE", "thank you so much for the gift"), ("BOB", "the food was cold and awful"), ("ALICE", "we will see")]
    root = tmp_path_factory.mktemp("served")
    corpus = root / "corpus"
    faces = [astronaut(), pyfeat_face() if pyfeat_face() is not None else astronaut()]
    for i in range(3):
        said = lines[i:] + lines[:i]
        segs = make_clip(corpus / f"c{i}.mp4", [t for t, _, _ in said[:3]], faces[i % 2], gap=0.3)
        rows = ["start,end,speaker,text,sentiment,happiness"] + [f"{s.start:.3f},{s.end:.3f},A,{t},{v},{h}" for s, (t, v, h) in zip(segs, said)]
        (corpus / f"c{i}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    extract_folder(corpus, root / "data.pkl", ExtractSettings.create(cache_dir=root / "cache"), workers=1, test_ratio=0.34)
    tiny = {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8}
    runs = root / "runs"
    for task, emotion, out in (("regression", None, runs / "regression"), ("emotion", "happiness", runs / "emotion" / "happiness")):
        run_training(root / "data.pkl", out, TrainConfig.for_task(task, emotion=emotion, epochs=1, batch_size=4, valid_ratio=0.0,
                                                                   device="cpu"), tiny)
    clip = root / "clips" / "talk.mp4"
    spans = make_clip(clip, [t for _, t in target], faces, gap=0.4)

    def clock(x: float) -> str:
        return f"00:00:{x:06.3f}".replace(".", ",")

    srt = "".join(f"{i}\n{clock(s.start)} --> {clock(s.end)}\n{who}: {text}\n\n" for i, (s, (who, text)) in enumerate(zip(spans, target), 1))
    clip.with_suffix(".srt").write_text(srt, encoding="utf-8")
    return {"runs": runs, "clip": clip, "srt": clip.with_suffix(".srt"), "spans": spans, "target": target,
            "predictor": Predictor(runs), "root": root}
