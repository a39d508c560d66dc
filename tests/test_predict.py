"""`cli.py predict` end to end: generated clips -> extract -> tiny models trained here -> predictions in the
three formats and a plot; several clips and folders; a binary checkpoint; feature specs that cannot be
reproduced; clips without speech; missing and ambiguous checkpoints."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from demo.clipgen import astronaut, make_clip, make_silent_video, pyfeat_face, tools_available

pytestmark = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")

TINY = {"d_global": 8, "d_party": 8, "d_emotion": 8, "d_hidden": 8}
LINES = [("I love this wonderful day", 2.5, 3.0), ("this is terrible and I hate it", -2.5, 0.0),
         ("what a lovely surprise", 2.0, 2.0), ("I feel awful and sad", -2.0, 0.0)]
TARGET = [("ALICE", "thank you so much for the gift"), ("BOB", "the food was cold and awful"), ("ALICE", "we will see")]


def cli(*argv) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


def srt(cues: list[tuple[float, float, str]]) -> str:
    def clock(x: float) -> str:
        return f"00:{int(x // 60):02d}:{x % 60:06.3f}".replace(".", ",")

    return "".join(f"{i}\n{clock(a)} --> {clock(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Four labelled clips extracted with the default extractors; regression, happiness and binary models
    trained for one epoch with tiny dims; a held-out target clip with a two-speaker .srt."""
    from model.config import TrainConfig
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings
    from pipeline.training.train import run_training

    root = tmp_path_factory.mktemp("predict")
    corpus = root / "corpus"
    faces = [astronaut(), pyfeat_face() if pyfeat_face() is not None else astronaut()]
    for i in range(4):
        lines = LINES[i:] + LINES[:i]
        segs = make_clip(corpus / f"c{i}.mp4", [t for t, _, _ in lines[:3]], faces[i % 2], gap=0.3)
        rows = ["start,end,speaker,text,sentiment,happiness"]
        rows += [f"{s.start:.3f},{s.end:.3f},A,{t},{v},{h}" for s, (t, v, h) in zip(segs, lines)]
        (corpus / f"c{i}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = root / "data.pkl"
    extract_folder(corpus, data, ExtractSettings.create(cache_dir=root / "cache"), workers=1, test_ratio=0.25)
    runs = root / "runs"
    for task, emotion, out in (("regression", None, runs / "regression"), ("emotion", "happiness", runs / "emotion" / "happiness"),
                               ("binary", None, root / "binary")):
        tcfg = TrainConfig.for_task(task, emotion=emotion, epochs=1, batch_size=4, valid_ratio=0.0, device="cpu")
        run_training(data, out, tcfg, TINY)
    clips = root / "clips"
    said = make_clip(clips / "target.mp4", [t for _, t in TARGET], faces, gap=0.3)
    (clips / "target.srt").write_text(srt([(s.start, s.end, f"{who}: {text}") for s, (who, text) in zip(said, TARGET)]), encoding="utf-8")
    return {"root": root, "runs": runs, "binary": root / "binary" / "checkpoint.pt", "clip": clips / "target.mp4", "spans": said}


def test_the_checkpoint_is_resolved_once_per_predict(trained, capsys, tmp_path, monkeypatch):
    """`predict --plot` checks its output against the models' files and then loads them: one resolution of
    --checkpoint serves both (model.checkpoint.locate_models), whatever the number of models."""
    import model.checkpoint

    calls = []
    real = model.checkpoint.checkpoint_files
    monkeypatch.setattr(model.checkpoint, "checkpoint_files", lambda path: calls.append(path) or real(path))
    assert cli("predict", trained["clip"], "--checkpoint", trained["runs"], "--format", "json", "--plot", tmp_path / "p.png") == 0
    assert set(json.loads(capsys.readouterr().out)["models"]) == {"regression", "happiness"}
    assert calls == [trained["runs"]]


def test_json_table_csv_and_plot_agree(trained, capsys, tmp_path):
    clip, runs = trained["clip"], trained["runs"]
    assert cli("predict", clip, "--checkpoint", runs, "--format", "json", "--plot", tmp_path / "plot.png") == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["clip"] == str(clip) and out["transcript"] == "target.srt"
    assert set(out["models"]) == {"regression", "happiness"}
    utts = out["utterances"]
    assert [(u["speaker"], u["text"]) for u in utts] == TARGET
    for u, seg in zip(utts, trained["spans"]):
        assert u["start"] == pytest.approx(seg.start, abs=2e-3) and u["end"] == pytest.approx(seg.end, abs=2e-3)
        assert -3 <= u["sentiment"] <= 3
        assert u["label"] == ("neutral" if abs(u["sentiment"]) < 0.5 else "positive" if u["sentiment"] > 0 else "negative")
        assert set(u["emotions"]) == {"happiness"} and 0 <= u["emotions"]["happiness"] <= 1
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in captured.err

    assert cli("predict", clip, "--checkpoint", runs, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["clip", "start", "end", "speaker", "text", "modalities", "sentiment", "label", "happiness"]
    assert all(r["modalities"] == "text+audio+visual" for r in rows)
    assert [r["text"] for r in rows] == [t for _, t in TARGET]
    assert [float(r["sentiment"]) for r in rows] == pytest.approx([u["sentiment"] for u in utts])
    assert [float(r["happiness"]) for r in rows] == pytest.approx([u["emotions"]["happiness"] for u in utts])

    assert cli("predict", clip, "--checkpoint", runs) == 0  # table is the default
    table = capsys.readouterr().out.splitlines()
    header = next(line for line in table if "sentiment" in line).split()
    assert header == ["start", "end", "speaker", "text", "sentiment", "label", "happiness"]
    for (who, text), u in zip(TARGET, utts):
        row = next(line for line in table if text in line)
        assert who in row and f"{u['sentiment']:+.2f}" in row and u["label"] in row


def test_evaluate_on_a_folder_of_labelled_clips(trained, capsys, tmp_path):
    """evaluate --data FOLDER extracts the clips with each checkpoint's extractors: the same figures as on the
    dataset extracted from that folder, all of whose videos it scores (none is marked train)."""
    runs, root = trained["runs"], trained["root"]
    assert cli("evaluate", "--checkpoint", runs, "--data", root / "data.pkl", "--split", "all", "--json") == 0
    on_dataset = json.loads(capsys.readouterr().out)
    assert cli("evaluate", "--checkpoint", runs, "--data", root / "corpus", "--json", "--cache-dir", tmp_path / "cache") == 0
    on_clips = json.loads(capsys.readouterr().out)
    assert set(on_clips) == {"regression", "emotion/happiness"} == set(on_dataset)
    for run, metrics in on_dataset.items():
        for k, v in metrics.items():
            assert on_clips[run][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (run, k)
    assert cli("evaluate", "--checkpoint", runs, "--data", root / "corpus", "--cache-dir", tmp_path / "cache") == 0
    table = capsys.readouterr().out
    assert "regression: regression on test (4 videos" in table and "emotion/happiness: emotion/happiness on test" in table


def test_modalities_subset(trained, capsys):
    """--modalities text,audio: the face is not analysed, each utterance says what it used, and the
    sentiment differs from the full prediction only through the missing modality."""
    clip, runs = trained["clip"], trained["runs"]
    assert cli("predict", clip, "--checkpoint", runs, "--format", "json") == 0
    full = json.loads(capsys.readouterr().out)
    assert cli("predict", clip, "--checkpoint", runs, "--format", "json", "--modalities", "text,audio") == 0
    part = json.loads(capsys.readouterr().out)
    assert part["modalities"] == ["text", "audio"] and full["modalities"] == ["text", "audio", "visual"]
    assert all(u["modalities"] == ["text", "audio"] for u in part["utterances"])
    assert [u["sentiment"] for u in part["utterances"]] != [u["sentiment"] for u in full["utterances"]]
    assert cli("predict", clip, "--checkpoint", runs, "--modalities", "text,audio") == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if "sentiment" in line).split()
    assert header[4] == "modalities"  # shown in the table when some utterance lacks a modality
    import pipeline.prediction.predict

    predictor = pipeline.prediction.predict.Predictor(runs, modalities=["text"])
    predictor.predict(clip)
    assert predictor.timings["visual"] < 0.05 and predictor.timings["audio"] < 0.05  # not extracted at all


def test_binary_checkpoint_gives_label_and_probability(trained, capsys):
    assert cli("predict", trained["clip"], "--checkpoint", trained["binary"], "--format", "json") == 0
    for u in json.loads(capsys.readouterr().out)["utterances"]:
        assert u["sentiment"] is None and u["emotions"] == {}
        assert 0 <= u["positive_prob"] <= 1 and u["label"] == ("positive" if u["positive_prob"] >= 0.5 else "negative")


def test_several_clips_and_folders(trained, capsys, tmp_path):
    folder = tmp_path / "many"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(trained["clip"], folder / "sub" / "a.mp4")
    shutil.copy(trained["clip"].with_suffix(".srt"), folder / "sub" / "a.srt")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    assert cli("predict", folder, trained["clip"], "--checkpoint", trained["runs"], "--format", "json") == 1  # one clip failed
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [Path(r["clip"]).name for r in out] == ["broken.mp4", "a.mp4", "target.mp4"]
    assert out[0]["error"] and out[0]["utterances"] == []
    assert [u["text"] for u in out[1]["utterances"]] == [u["text"] for u in out[2]["utterances"]] == [t for _, t in TARGET]
    assert "broken.mp4" in captured.err and "3 clips, 6 utterances, 1 failed" in captured.err
    # --transcript names one clip's transcript: refused with several
    assert cli("predict", trained["clip"], folder / "sub" / "a.mp4", "--transcript", trained["clip"].with_suffix(".srt"),
               "--checkpoint", trained["runs"]) == 2
    assert "exactly one clip" in capsys.readouterr().err


def test_transcript_option(trained, capsys, tmp_path):
    clip = tmp_path / "bare.mp4"
    shutil.copy(trained["clip"], clip)
    lines = tmp_path / "words.txt"
    lines.write_text("\n".join(f"{who}: {text}" for who, text in TARGET) + "\n", encoding="utf-8")
    assert cli("predict", clip, "--transcript", lines, "--checkpoint", trained["runs"], "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["transcript"] == "words.txt" and [u["speaker"] for u in out["utterances"]] == ["ALICE", "BOB", "ALICE"]


def _mutated(trained, tmp_path, change) -> Path:
    import torch

    ckpt = torch.load(trained["runs"] / "regression" / "checkpoint.pt", weights_only=True)
    change(ckpt["feature_spec"])
    out = tmp_path / "changed" / "checkpoint.pt"
    out.parent.mkdir()
    torch.save(ckpt, out)
    return out


@pytest.mark.parametrize("change, expect", [
    (lambda s: s["audio"]["params"].update(feature_set="eGeMAPSv02"), "88-d features but the spec says 384-d"),
    (lambda s: s["text"].update(name="csd", params={"file": "CMU_MOSEI_TimestampedWordVectors.csd"}), "cannot be computed from a clip"),
    (lambda s: s["visual"].update(name="openface"), "visual extractor 'openface' is not available"),
    (lambda s: s["text"].update(dim=300), "its text feature spec and its model disagree (text 50 vs 300, model vs spec)"),
], ids=["dims", "imported", "unavailable", "inconsistent"])
def test_spec_that_cannot_be_reproduced_is_one_line(trained, capsys, tmp_path, change, expect):
    ckpt = _mutated(trained, tmp_path, change)
    assert cli("predict", trained["clip"], "--checkpoint", ckpt) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0] and str(ckpt) in lines[0]


def test_clips_without_speech(trained, capsys, tmp_path):
    quiet = tmp_path / "quiet.mp4"  # a face and an audio track of faint noise, no transcript: Whisper's VAD finds nothing
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=2:r=10", "-f", "lavfi",
                    "-i", "anoisesrc=color=white:amplitude=0.0003:d=2", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(quiet)], check=True)
    mute = tmp_path / "mute.mp4"  # no audio stream at all
    make_silent_video(mute, 1.0, astronaut())
    assert cli("predict", quiet, mute, "--checkpoint", trained["runs"], "--format", "json", "--plot", tmp_path / "p.png") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["utterances"] for r in out] == [[], []]
    assert "no speech detected (whisper tiny.en found none)" in out[0]["note"] and "no audio stream" in out[1]["note"]
    assert (tmp_path / "p.png").is_file()
    assert cli("predict", mute, "--checkpoint", trained["runs"]) == 0
    assert "no audio stream" in capsys.readouterr().out
    assert cli("predict", mute, "--checkpoint", trained["runs"], "--format", "csv") == 0
    assert capsys.readouterr().out.strip() == "clip,start,end,speaker,text,modalities,sentiment,label"


def test_predict_transcribes_as_the_training_data_was(trained, capsys, caplog, tmp_path):
    """The checkpoint records the transcriber of its training data; predict uses it for clips without a
    transcript, --asr overrides it with a warning, and a checkpoint that recorded none gets Whisper."""
    import torch

    from extractors.asr import build_transcriber, spec_of, word_error_rate

    bare = tmp_path / "bare.mp4"
    shutil.copy(trained["clip"], bare)
    recorded = torch.load(trained["runs"] / "regression" / "checkpoint.pt", weights_only=True)["feature_spec"]["asr"]
    assert recorded == spec_of(build_transcriber("whisper"))  # extract recorded it; train copied it

    def predict(ckpt, *flags) -> dict:
        assert cli("predict", bare, "--checkpoint", ckpt, "--format", "json", *flags) == 0
        return json.loads(capsys.readouterr().out)

    out = predict(trained["runs"])
    # one espeak voice throughout: the diarizer (recorded by extract, as the transcriber) finds one speaker
    assert out["transcript"] == "whisper tiny.en (automatic)" and {u["speaker"] for u in out["utterances"]} == {"S1"}
    assert out["speakers"] == "1 found by the diarizer (GE2E); a single voice"
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.prediction.predict"):
        off = predict(trained["runs"], "--diarize", "off")
    assert {u["speaker"] for u in off["utterances"]} == {"A"} and off["speakers"] == "not diarized (--diarize off)"
    assert "--diarize off: the checkpoint's training data was diarized" in caplog.text
    assert word_error_rate([" ".join(t for _, t in TARGET)], [" ".join(u["text"] for u in out["utterances"])]) <= 0.3
    sphinx = _mutated(trained, tmp_path, lambda s: s.update(asr=spec_of(build_transcriber("pocketsphinx"))))
    assert predict(sphinx)["transcript"] == "pocketsphinx (automatic)"
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.prediction.predict"):
        assert predict(sphinx, "--asr", "whisper")["transcript"] == "whisper tiny.en (automatic)"
    assert "--asr whisper: the checkpoint's training data was transcribed with pocketsphinx" in caplog.text
    shutil.rmtree(sphinx.parent)
    unrecorded = _mutated(trained, tmp_path, lambda s: s.pop("asr"))
    assert predict(unrecorded)["transcript"] == "whisper tiny.en (automatic)"
    assert predict(unrecorded, "--asr", "pocketsphinx")["transcript"] == "pocketsphinx (automatic)"


def test_missing_or_ambiguous_checkpoint(trained, capsys, tmp_path, monkeypatch):
    import model.checkpoint

    def one_line_error(*argv) -> str:
        assert cli("predict", trained["clip"], *argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        return err[0]

    assert "no such file or folder" in one_line_error("--checkpoint", tmp_path / "nope") and "make demo" in one_line_error("--checkpoint", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "no checkpoint.pt" in one_line_error("--checkpoint", tmp_path / "empty")
    monkeypatch.setattr(model.checkpoint, "DEFAULT_RUN", Path("runs") / "no_such_run_here")
    monkeypatch.setattr(model.checkpoint, "SHIPPED", Path("model") / "no_such_model_here")
    msg = one_line_error()
    assert "no --checkpoint given" in msg and "cli.py train" in msg
    both = tmp_path / "both"
    shutil.copytree(trained["runs"] / "regression", both / "one")
    shutil.copytree(trained["runs"] / "regression", both / "two")
    assert "are both regression models" in one_line_error("--checkpoint", both)
    assert cli("predict", trained["clip"].with_suffix(".srt"), "--checkpoint", trained["runs"]) == 2
    assert "not a clip" in capsys.readouterr().err


def test_an_unexpected_failure_on_one_clip_keeps_the_others():
    from pipeline.prediction.predict import predict_clips

    class Flaky:
        def predict(self, clip, transcript=None):
            if str(clip) == "bad.mp4":
                raise RuntimeError("native library gave up")
            return {"clip": str(clip), "utterances": []}

    results = predict_clips(["a.mp4", "bad.mp4", "c.mp4"], predictor=Flaky())
    assert [r["clip"] for r in results] == ["a.mp4", "bad.mp4", "c.mp4"]
    assert "RuntimeError" in results[1]["error"] and "error" not in results[0] and "error" not in results[2]


def test_emotion_class_checkpoint_reports_class_and_seven_probabilities(trained, capsys, tmp_path):
    """A 7-way emotion model beside the regression model: each utterance gets the class and the seven
    probabilities (summing to 1), in JSON, CSV (p_<class> columns), the table and the plot."""
    from model.config import TrainConfig
    from pipeline.training.train import run_training

    runs = tmp_path / "runs"
    shutil.copytree(trained["runs"] / "regression", runs / "regression")
    run_training(trained["root"] / "data.pkl", runs / "emotion7", TrainConfig.for_task("emotion-class", epochs=1, batch_size=4,
                                                                                           valid_ratio=0.0, device="cpu"), TINY)
    assert cli("predict", trained["clip"], "--checkpoint", runs, "--format", "json", "--plot", tmp_path / "p.png") == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["models"]) == {"regression", "emotion-class"}
    for u in out["utterances"]:
        probs = u["emotion_probs"]
        assert list(probs) == ["neutral", "happiness", "sadness", "anger", "surprise", "disgust", "fear"]
        assert sum(probs.values()) == pytest.approx(1, abs=1e-3) and u["emotion"] == max(probs, key=probs.get)
        assert u["sentiment"] is not None and u["emotions"] == {}
    assert (tmp_path / "p.png").stat().st_size > 0
    assert cli("predict", trained["clip"], "--checkpoint", runs, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    said = [f"{k}{s}" for k in ("words", "voice", "face") for s in ("", "_prob")]  # each modality's reading, then the fused one
    assert list(rows[0])[6:] == ["sentiment", "label", *said, "emotion", "uncertain", "uncertain_why",
                                 *[f"p_{c}" for c in out["utterances"][0]["emotion_probs"]]]
    assert [r["emotion"] for r in rows] == [u["emotion"] for u in out["utterances"]]
    assert cli("predict", trained["clip"], "--checkpoint", runs) == 0
    table = capsys.readouterr().out
    first = out["utterances"][0]
    assert f"{first['emotion']} {first['emotion_probs'][first['emotion']]:.2f}" in table


def test_plot_never_replaces_an_input(trained, capsys):
    """predict --plot onto the clip, its transcript or a checkpoint is refused before anything runs."""
    clip = trained["clip"]
    model = trained["runs"] / "regression" / "checkpoint.pt"
    before = {p: p.read_bytes() for p in (clip, clip.with_suffix(".srt"), model)}
    for target in before:
        assert cli("predict", clip, "--checkpoint", trained["runs"], "--plot", target) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: --plot {target} is one of this command's inputs; write to a new file"
    assert {p: p.read_bytes() for p in before} == before
