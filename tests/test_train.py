"""Training, evaluation, resume and the run folder, on small synthetic data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cli
from model.checkpoint import load_model
from model.config import TrainConfig
from pipeline.training.evaluate import evaluate_runs
from pipeline.training.train import run_training, split_validation
from tests.synthetic import synthetic_dataset, write_synthetic

FAST = {"epochs": 2, "batch_size": 8, "lr": 1e-3}
SMALL = {"d_global": 16, "d_party": 16, "d_emotion": 16, "d_hidden": 16}  # fast; the paper sizes are tested in test_model.py


def test_run_folder_and_metric_names(tmp_path):
    ds = synthetic_dataset()
    metrics = run_training(ds, tmp_path / "run", TrainConfig.for_task("binary", **FAST), SMALL)
    for name in ("checkpoint.pt", "last.pt", "config.json", "metrics.json", "curves.png"):
        assert (tmp_path / "run" / name).exists(), name
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"best_epoch", "valid", "test"} <= set(on_disk)
    assert {"accuracy", "f1_weighted", "accuracy_nonzero", "f1_nonzero"} <= set(metrics["test"])
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["task"] == "binary" and ckpt["feature_spec"]["text"]["dim"] == 20
    assert ckpt["model_config"]["d_audio"] == 12


def test_regression_and_emotion_metric_names(tmp_path):
    ds = synthetic_dataset()
    reg = run_training(ds, tmp_path / "r", TrainConfig.for_task("regression", **FAST), SMALL)
    assert {"mae", "pearson_r", "accuracy_binary", "accuracy_7"} <= set(reg["test"])
    emo = run_training(ds, tmp_path / "e", TrainConfig.for_task("emotion", emotion="sadness", **FAST), SMALL)
    assert {"accuracy", "weighted_accuracy", "f1_weighted"} <= set(emo["test"])


def test_regression_learns_a_linear_signal(tmp_path):
    ds = synthetic_dataset(n_videos=50, seed=1)
    metrics = run_training(ds, tmp_path / "r", TrainConfig.for_task("regression", epochs=15, batch_size=4, lr=3e-3, patience=15), SMALL)
    truth = np.concatenate([ds["labels"][v][:, 0] for v in ds["test"]])
    train_mean = np.concatenate([ds["labels"][v][:, 0] for v in ds["train"]]).mean()
    constant_mae = np.abs(truth - train_mean).mean()  # the best constant a model could learn from the train labels
    assert metrics["test"]["mae"] < 0.8 * constant_mae
    assert metrics["test"]["pearson_r"] > 0.5


def test_validation_split_comes_from_training_videos_only():
    train, valid = split_validation([f"v{i}" for i in range(20)], 0.1, seed=3)
    assert 1 <= len(valid) <= 5 and not set(train) & set(valid) and len(train) + len(valid) == 20
    assert split_validation(["a"], 0.1, 0) == (["a"], [])


def test_model_selection_never_sees_the_test_split(tmp_path):
    """Corrupting test labels must not change which epoch is selected."""
    ds = synthetic_dataset(n_videos=30)
    a = run_training(ds, tmp_path / "a", TrainConfig.for_task("binary", epochs=4, batch_size=8, lr=3e-3, patience=10), SMALL)
    for v in ds["test"]:
        ds["labels"][v][:, 0] *= -1
    b = run_training(ds, tmp_path / "b", TrainConfig.for_task("binary", epochs=4, batch_size=8, lr=3e-3, patience=10), SMALL)
    assert a["best_epoch"] == b["best_epoch"] and a["valid"] == b["valid"]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    ds = synthetic_dataset()
    cfg = TrainConfig.for_task("binary", epochs=4, batch_size=8, lr=1e-3, patience=10)
    run_training(ds, tmp_path / "full", cfg, SMALL)

    def interrupt(done, total, **info):
        if (info.get("stage") or "").startswith("epoch 3") and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(ds, tmp_path / "cut", cfg, SMALL, progress=interrupt)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 2
    run_training(ds, tmp_path / "cut", cfg, SMALL, resume=True)
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert [h["epoch"] for h in cut["history"]] == [1, 2, 3, 4]
    for k in full["model"]:
        torch.testing.assert_close(full["model"][k], cut["model"][k])


def test_faithful_flag_reaches_the_checkpoint(tmp_path):
    data = write_synthetic(tmp_path / "d.pkl")
    assert cli.main(["train", "--task", "binary", "--data", str(data), "--out", str(tmp_path / "f"), "--epochs", "1", "--faithful"]) == 0
    model, ckpt = load_model(tmp_path / "f")
    assert ckpt["model_config"]["mask_fusion"] is False and model.config.mask_fusion is False


def test_cli_emotion_all_and_evaluate(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=12)
    code = cli.main(["train", "--task", "emotion", "--emotion", "all", "--data", str(data), "--out", str(tmp_path / "emo"), "--epochs", "1", "--batch-size", "4"])
    assert code == 0
    for e in ("happiness", "sadness", "anger", "surprise", "disgust", "fear"):
        assert (tmp_path / "emo" / e / "checkpoint.pt").exists()
    summary = json.loads((tmp_path / "emo" / "summary.json").read_text())
    assert set(summary) == {"happiness", "sadness", "anger", "surprise", "disgust", "fear"}
    assert "| fear |" in capsys.readouterr().out
    (result,) = evaluate_runs(tmp_path / "emo" / "fear", data)
    assert "emotion/fear" in result.title and "weighted_accuracy" in result.metrics
    assert result.metrics["weighted_accuracy"] == pytest.approx(summary["fear"]["test"]["weighted_accuracy"])
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "emo"), "--data", str(data), "--json"]) == 0
    by_run = json.loads(capsys.readouterr().out)  # a folder of runs: one entry per run
    assert set(by_run) == set(summary)
    for e, metrics in by_run.items():
        assert metrics["weighted_accuracy"] == pytest.approx(summary[e]["test"]["weighted_accuracy"]), e
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "emo" / "fear"), "--data", str(data)]) == 0
    printed = capsys.readouterr().out  # the table shows what metrics.json holds
    on_disk = json.loads((tmp_path / "emo" / "fear" / "metrics.json").read_text())["test"]
    for k in ("accuracy", "weighted_accuracy", "f1_weighted"):
        line = next(x for x in printed.splitlines() if x.split() and x.split()[0] == k)
        assert float(line.split()[1]) == pytest.approx(on_disk[k], abs=0.006), k


def test_cli_info_model_prints_paper_parameter_count(capsys):
    assert cli.main(["info", "model", "--task", "binary", "--dims", "300", "384", "35"]) == 0
    assert "trainable_parameters=3,586,202" in capsys.readouterr().out
    assert cli.main(["info", "model", "--task", "regression", "--dims", "300", "384", "35"]) == 0
    assert "trainable_parameters=1,782,201" in capsys.readouterr().out


def test_emotion_all_resumes_the_emotions_it_did_not_finish(tmp_path):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=10)
    args = ["train", "--task", "emotion", "--emotion", "all", "--data", str(data), "--out", str(tmp_path / "emo"), "--epochs", "1", "--batch-size", "4"]
    assert cli.main(args) == 0
    for e in ("anger", "surprise", "disgust", "fear"):  # as if the run had stopped during anger
        for f in (tmp_path / "emo" / e).iterdir():
            if f.is_file():
                f.unlink()
    finished = {e: (tmp_path / "emo" / e / "checkpoint.pt").stat().st_mtime_ns for e in ("happiness", "sadness")}
    assert cli.main(args + ["--resume"]) == 0
    assert all((tmp_path / "emo" / e / "checkpoint.pt").exists() for e in ("anger", "surprise", "disgust", "fear"))
    for e, mtime in finished.items():  # the finished emotions were not trained again
        assert (tmp_path / "emo" / e / "checkpoint.pt").stat().st_mtime_ns == mtime, e
        assert len(torch.load(tmp_path / "emo" / e / "last.pt", weights_only=True)["history"]) == 1


def test_a_plan_that_continues_what_was_started_begins_a_run_stopped_before_its_first_epoch(tmp_path):
    """A single run stopped before its first epoch was saved leaves config.json and no last.pt: `train --resume`
    refuses it (nothing to resume), a caller that continues whatever was started (`make pretrained`) starts it."""
    from core.errors import UserError
    from pipeline.training.runs import plan_runs, run_plan

    ds = synthetic_dataset()
    (run,), ensembles = plan_runs("binary", tmp_path / "run", train=FAST, model_overrides=SMALL)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="nothing to resume"):
        run_plan(ds, [run], ensembles, resume=True)
    results = run_plan(ds, [run], ensembles, resume=True, start_new=True)
    assert results[run.name]["best_epoch"] >= 1 and (tmp_path / "run" / "last.pt").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["task"] == "binary"
    assert len(torch.load(tmp_path / "run" / "last.pt", weights_only=True)["history"]) == FAST["epochs"]
    again = run_plan(ds, [run], ensembles, resume=True, start_new=True)  # finished: re-read, not retrained
    assert again[run.name]["test"] == results[run.name]["test"]


def test_modality_dropout_trains_a_model_that_uses_what_is_there(tmp_path):
    """Sentiment lives in the text; a model trained with modality dropout still reads it, evaluation with a
    subset of modalities runs through the CLI, and leaving text out costs accuracy."""
    data = write_synthetic(tmp_path / "d.pkl", n_videos=50, seed=1)
    metrics = run_training(data, tmp_path / "r", TrainConfig.for_task("regression", epochs=12, batch_size=4, lr=3e-3, patience=12,
                                                                      modality_dropout=0.5), SMALL)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["modality_dropout"] == 0.5
    (full,) = evaluate_runs(tmp_path / "r", data)
    (no_text,) = evaluate_runs(tmp_path / "r", data, modalities=["audio", "visual"])
    m_full, title_nt, m_nt = full.metrics, no_text.title, no_text.metrics
    assert m_full["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-5)
    assert title_nt.endswith("with audio+visual only") and m_nt["mae"] > m_full["mae"] + 0.1
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "r"), "--data", str(data), "--modalities", "text,audio", "--json"]) == 0
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--checkpoint", str(tmp_path / "r"), "--data", str(data), "--modalities", "sound"])
    assert exit_.value.code == 2


def test_modality_dropout_out_of_range_is_refused(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=6)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--task", "binary", "--data", str(data), "--out", str(tmp_path / "r"), "--modality-dropout", "1"])
    assert exit_.value.code == 2
    assert "argument --modality-dropout: 1 is out of range; give a number in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_seed_ensemble_trains_saves_and_predicts_as_one_model(tmp_path, capsys):
    """--seeds: one run per seed sharing a validation split, an ensemble checkpoint whose output is the mean
    of the members' scores, evaluated as one model; half-precision saving keeps the outputs."""
    from model.dialogues import DialogueDataset, collate
    from model.checkpoint import read_checkpoint, save_checkpoint
    from model.checkpoint import checkpoint_files

    data = write_synthetic(tmp_path / "d.pkl", n_videos=24, seed=2)
    out = tmp_path / "ens"
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(out), "--seeds", "3,4", "--epochs", "2",
                     "--batch-size", "4", "--hidden-size", "8"]) == 0
    assert "ensemble of 2 seeds" in capsys.readouterr().out
    for s in (3, 4):
        cfg = json.loads((out / f"seed-{s}" / "config.json").read_text())
        assert cfg["train"]["seed"] == s and cfg["train"]["split_seed"] == 0 and cfg["model"]["d_hidden"] == 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ensemble"] == [3, 4] and set(metrics["members"]) == {"3", "4"}
    assert checkpoint_files(out) == [out / "checkpoint.pt"] and checkpoint_files(tmp_path) == [out / "checkpoint.pt"]
    ens, _ = load_model(out / "checkpoint.pt")
    members = [load_model(out / f"seed-{s}" / "checkpoint.pt")[0] for s in (3, 4)]
    ds = synthetic_dataset(n_videos=24, seed=2)
    batch = collate([DialogueDataset(ds, ds["test"], "regression")[i] for i in range(len(ds["test"]))])
    with torch.no_grad():
        expected = (members[0](*batch.inputs()) + members[1](*batch.inputs())) / 2
        torch.testing.assert_close(ens(*batch.inputs()), expected)
    (run,) = evaluate_runs(out, data)
    assert run.metrics["mae"] == pytest.approx(metrics["test"]["mae"], rel=1e-5)
    half = tmp_path / "half.pt"
    save_checkpoint(read_checkpoint(out / "checkpoint.pt"), half, half=True)
    raw = torch.load(half, weights_only=True)
    assert raw["dtype"] == "float16" and all(v.dtype == torch.float16 for sd in raw["members"] for v in sd.values() if v.is_floating_point())
    assert half.stat().st_size < (out / "checkpoint.pt").stat().st_size
    small, _ = load_model(half)
    with torch.no_grad():
        torch.testing.assert_close(small(*batch.inputs()), expected, atol=2e-2, rtol=0)


def test_emotion_class_ensemble_averages_probabilities(tmp_path):
    from model.network import Ensemble, MultilogueNet
    from model.config import ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig.for_task("emotion-class", 6, 5, 4, d_global=6, d_party=6, d_emotion=5, d_hidden=5)
    nets = [MultilogueNet(cfg).eval() for _ in range(3)]
    x = (torch.randn(2, 3, 6), torch.randn(2, 3, 5), torch.randn(2, 3, 4), torch.eye(2).repeat(2, 2, 1)[:, :3], torch.ones(2, 3, dtype=torch.bool))
    with torch.no_grad():
        probs = torch.stack([n(*x).exp() for n in nets]).mean(0)
        torch.testing.assert_close(Ensemble(nets)(*x).exp(), probs)


def test_selection_on_the_metric_and_class_weight_schemes(tmp_path):
    from model.dialogues import DialogueDataset
    from pipeline.training.train import class_weights

    ds = synthetic_dataset(n_videos=30, seed=5)
    m = run_training(ds, tmp_path / "m", TrainConfig.for_task("binary", epochs=4, batch_size=8, lr=3e-3, patience=10, select="metric"), SMALL)
    history = torch.load(tmp_path / "m" / "last.pt", weights_only=True)["history"]
    best = max(history, key=lambda h: (h["valid"]["accuracy"], -h["epoch"]))  # the first epoch with the best accuracy
    assert m["best_epoch"] == best["epoch"]
    data = DialogueDataset(ds, ds["train"], "binary")
    inverse = class_weights(data, "binary")
    assert torch.allclose(class_weights(data, "binary", "sqrt"), inverse.sqrt())
    assert class_weights(data, "binary", "none").tolist() == [1.0, 1.0]
    assert class_weights(data, "regression", "sqrt") is None


def test_kill_9_of_train_then_resume_reaches_the_same_weights(tmp_path):
    """A real SIGKILL of `cli.py train` mid-run (not a simulated interrupt), then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = write_synthetic(tmp_path / "d.pkl", n_videos=120, seed=4)
    args = ["--task", "regression", "--data", str(data), "--epochs", "12", "--batch-size", "2", "--hidden-size", "16", "--patience", "50"]
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run([sys.executable, "cli.py", "train", *args, "--out", str(tmp_path / "full")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-500:]
    proc = subprocess.Popen([sys.executable, "cli.py", "train", *args, "--out", str(tmp_path / "cut")], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "cut" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if torch.load(last, weights_only=True)["epoch"] >= 3:
                break
        except Exception:  # not written yet (or being replaced)
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stopped_at = torch.load(last, weights_only=True)["epoch"]
    assert 3 <= stopped_at < 12, "the run finished before it could be killed; make it longer"
    resumed = subprocess.run([sys.executable, "cli.py", "train", *args, "--out", str(tmp_path / "cut"), "--resume"], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-500:]
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert [h["epoch"] for h in b["history"]] == list(range(1, 13))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k])


def test_grid_trains_each_combination_and_selects_on_validation(tmp_path, capsys):
    """--grid: one run per combination in OUT/grid-.../, the one with the best validation loss copied into OUT
    (which predict and evaluate then read as one model) with selection.json; test figures play no part."""
    from model.checkpoint import checkpoint_files
    from pipeline.training.runs import parse_grid, plan_runs

    data = write_synthetic(tmp_path / "d.pkl", n_videos=12, seed=3)
    out = tmp_path / "g"
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "4",
                     "--hidden-size", "8", "--grid", "lr=1e-3,3e-3", "dropout=0.25,0.5"]) == 0
    printed = capsys.readouterr().out
    labels = ["lr=1e-3,dropout=0.25", "lr=1e-3,dropout=0.5", "lr=3e-3,dropout=0.25", "lr=3e-3,dropout=0.5"]
    selection = json.loads((out / "selection.json").read_text())
    assert list(selection["candidates"]) == labels and selection["criterion"].startswith("validation loss")
    losses = {lb: c["valid"]["loss"] for lb, c in selection["candidates"].items()}
    assert selection["selected"] == min(labels, key=losses.get) and f"{selection['selected']} selected on validation" in printed
    best = out / f"grid-{selection['selected']}"
    assert (out / "checkpoint.pt").read_bytes() == (best / "checkpoint.pt").read_bytes()
    assert json.loads((out / "metrics.json").read_text())["selected"] == selection["selected"]
    cfg = json.loads((tmp_path / "g" / "grid-lr=3e-3,dropout=0.5" / "config.json").read_text())
    assert cfg["train"]["lr"] == 3e-3 and cfg["model"]["dropout"] == 0.5 and cfg["model"]["d_hidden"] == 8
    assert checkpoint_files(out) == [out / "checkpoint.pt"]
    # with --seeds each combination is an ensemble; with --emotion all each emotion selects its own
    runs, ensembles = plan_runs("emotion", tmp_path / "e", emotion="all", seeds=[1, 2], grid=parse_grid(["l2=0,1e-4"]))
    assert len(runs) == 24 and len(ensembles) == 12
    assert ensembles[0].out == tmp_path / "e" / "happiness" / "grid-l2=0" and ensembles[0].group == "happiness"
    for bad, message in ((["lr=fast"], "--grid lr=fast: 'fast' is not a number > 0"), (["lr=nan"], "'nan' is not a finite number"),
                         (["class-weights=inverse,equal"], "'equal' is not a valid class-weights"), (["speed=1"], "expected KEY=V1,V2"), (["lr=1e-3,1e-3"], "distinct values")):
        with pytest.raises(cli.UserError, match=message):
            parse_grid(bad)
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(tmp_path / "x"), "--lr", "1e-3", "--grid", "lr=1e-3,3e-3"]) == 2
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(tmp_path / "x"), "--valid-ratio", "0", "--grid", "lr=1e-3,3e-3"]) == 2
    assert "must be > 0" in capsys.readouterr().err and not (tmp_path / "x").exists()


# ------------------------------------------------------------------ hardening: runs that cannot finish, folders that hold runs
def test_a_diverging_run_stops_and_keeps_its_last_good_epoch(tmp_path):
    """The loss turns NaN in epoch 2 (a weight is poisoned, as an overflow would): the run stops with one line, and
    checkpoint.pt and last.pt are epoch 1's, finite; no metrics.json with NaN is written."""
    import gc

    from model.network import MultilogueNet
    from pipeline.training.train import TrainingDiverged

    def poison(done, total, *, stage=None, **figures):
        if stage == "epoch 2/3" and done == 1:
            net = next(o for o in gc.get_objects() if type(o) is MultilogueNet and o.training)
            with torch.no_grad():
                next(net.parameters()).fill_(float("nan"))

    out = tmp_path / "run"
    cfg = TrainConfig.for_task("regression", epochs=3, batch_size=4, lr=1e-3, patience=5)
    with pytest.raises(TrainingDiverged, match=r"run: training diverged in epoch 2 \(the training loss is nan\); its last good "
                                               r"checkpoint.pt and last.pt are kept; lower --lr \(it is 0.001\)"):
        run_training(synthetic_dataset(n_videos=12), out, cfg, SMALL, progress=poison)
    assert not (out / "metrics.json").exists()
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    model, _ = load_model(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_learning_rate_that_overflows_is_one_line_and_no_nan_is_written(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=12)
    code = cli.main(["train", "--task", "binary", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "3", "--lr", "1e30",
                     "--batch-size", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and "training diverged in epoch" in err[-1] and "lower --lr (it is 1e+30)" in err[-1]
    assert not (tmp_path / "run" / "metrics.json").exists()
    for f in (tmp_path / "run").glob("*.json"):
        json.loads(f.read_text(), parse_constant=lambda c: pytest.fail(f"{f.name} holds {c}"))


def test_metrics_json_holds_null_where_a_figure_is_nan(tmp_path):
    """A constant target gives a NaN Pearson r: metrics.json must stay strict JSON (null), not NaN."""
    ds = synthetic_dataset(n_videos=12)
    for vid in ds["test"]:
        ds["labels"][vid][:, 0] = 1.0
    metrics = run_training(ds, tmp_path / "run", TrainConfig.for_task("regression", **FAST), SMALL)
    assert np.isnan(metrics["test"]["pearson_r"])
    text = (tmp_path / "run" / "metrics.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"))["test"]["pearson_r"] is None


def test_an_occupied_run_folder_is_refused_unless_overwrite(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=8)
    args = ["train", "--task", "binary", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4"]
    assert cli.main(args) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (tmp_path / "run").glob("*.*")}
    assert cli.main([*args[:2], "regression", *args[3:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: --out {tmp_path / 'run'} already holds a run (binary, finished); add --resume to continue it, "
                   "--overwrite to replace it, or choose another --out")
    assert {p: p.read_bytes() for p in (tmp_path / "run").glob("*.*")} == before
    assert cli.main([*args[:2], "regression", *args[3:], "--overwrite"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["task"] == "regression"
    assert cli.main([*args, "--resume", "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_emotion_all_checks_every_emotion_before_training_any(tmp_path, capsys):
    ds = synthetic_dataset(n_videos=8)
    fear = 1 + 5  # LABEL_COLUMNS: sentiment, happiness, sadness, anger, surprise, disgust, fear
    for vid in ds["ID"]:
        ds["labels"][vid][:, fear] = np.nan
    from data.dataset import save_dataset

    data = save_dataset(ds, tmp_path / "d.pkl")
    code = cli.main(["train", "--task", "emotion", "--emotion", "all", "--data", str(data), "--out", str(tmp_path / "emo"), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"error: {data}: no training utterance has a 'fear' label; label the data or pick another --task/--emotion"
    assert not (tmp_path / "emo").exists()


def test_balance_corpora_repeats_the_smaller_corpora(tmp_path):
    from data.merge import merge_datasets
    from pipeline.training.train import balanced, corpus_of

    big = synthetic_dataset(n_videos=40, seed=1)
    small = synthetic_dataset(n_videos=4, seed=2)
    small["meta"]["features"] = big["meta"]["features"]
    ds = merge_datasets({"big": big, "small": small})
    ids = ds["train"]
    out = balanced(ds, ids)
    n = {c: sum(len(ds["speakers"][v]) for v in ids if corpus_of(ds, v) == c) for c in ("big", "small")}
    factor = round((n["big"] / n["small"]) ** 0.5)
    assert factor > 1 and out.count(next(v for v in ids if v.startswith("small/"))) == factor
    assert all(out.count(v) == 1 for v in ids if v.startswith("big/"))
    assert balanced(big, big["train"]) == big["train"]  # one corpus: unchanged
    data = tmp_path / "d.pkl"
    from data.dataset import save_dataset

    save_dataset(ds, data)
    m = run_training(data, tmp_path / "r", TrainConfig.for_task("regression", epochs=1, batch_size=8, balance_corpora=True), SMALL)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["balance_corpora"] is True and m["epochs_run"] == 1


def test_validation_keeps_a_group_on_one_side():
    """Augmented copies of one recording (a dataset's meta["groups"]) never straddle the validation split; without
    groups the split is the per-video one."""
    videos = [f"clip{i}/v{k}" for i in range(30) for k in range(3)]
    groups = {v: v.split("/")[0] for v in videos}
    train, valid = split_validation(videos, 0.2, seed=1, groups=groups)
    assert valid and train
    assert not {groups[v] for v in train} & {groups[v] for v in valid}
    assert sorted(train + valid) == sorted(videos)
    assert split_validation(videos, 0.2, seed=1) == split_validation(videos, 0.2, seed=1, groups={})
    split = split_validation(videos, 0.2, seed=1)
    assert {groups[v] for v in split[0]} & {groups[v] for v in split[1]}  # per video, copies do straddle it
