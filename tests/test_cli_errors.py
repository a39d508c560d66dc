"""Bad input: one clear line on stderr, exit code 2, no traceback, no partial output."""

import os
import pickle

import numpy as np
import pytest

import cli
from tests.synthetic import synthetic_dataset, write_synthetic


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def train_args(data, out, *extra):
    return ["train", "--task", "binary", "--data", data, "--out", out, "--epochs", "1", *extra]


def test_missing_data_file(tmp_path, capsys):
    code, err = run_cli(train_args(tmp_path / "nope.pkl", tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "nope.pkl", "no such file")
    assert not (tmp_path / "run").exists()


def test_file_in_the_wrong_format(tmp_path, capsys):
    bad = tmp_path / "clip.pkl"
    bad.write_bytes(b"\x00\x01 this is not a pickle")
    code, err = run_cli(train_args(bad, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "clip.pkl: not a", "dataset pickle", "pass a file written by `cli.py extract` or `cli.py import`")
    assert not (tmp_path / "run").exists()


def test_pickle_with_missing_key(tmp_path, capsys):
    ds = synthetic_dataset()
    del ds["visual_feat"]
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(ds))
    code, err = run_cli(train_args(path, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "d.pkl", "visual_feat")
    assert not (tmp_path / "run").exists()


def test_pickle_with_mismatched_lengths(tmp_path, capsys):
    ds = synthetic_dataset()
    ds["sentence_in_text"]["video_002"].append("extra")
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(ds))
    code, err = run_cli(train_args(path, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "d.pkl: video 'video_002': 'sentence_in_text' has 2 entries but the features have 1 utterances; store one entry per utterance")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_split(tmp_path, capsys, split):
    ds = synthetic_dataset()
    ds[split] = []
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(ds))
    code, err = run_cli(train_args(path, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, f"{split} split is empty")
    assert not (tmp_path / "run").exists()


def test_unknown_emotion(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    code, err = run_cli(["train", "--task", "emotion", "--emotion", "joy", "--data", data, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "joy", "happiness")
    code, err = run_cli(["train", "--task", "emotion", "--data", data, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "--emotion")
    assert not (tmp_path / "run").exists()


def test_checkpoint_whose_dims_do_not_match_the_data(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    assert cli.main([str(a) for a in train_args(data, tmp_path / "run")]) == 0
    other = write_synthetic(tmp_path / "other.pkl", dims=(20, 7, 6))
    capsys.readouterr()
    code, err = run_cli(["evaluate", "--checkpoint", tmp_path / "run", "--data", other], capsys)
    assert_one_line_error(code, err, "expects feature dims that", "other.pkl does not have (audio 12 vs 7, checkpoint vs data); "
                          "use a checkpoint trained on features from the same extractors")


def test_missing_and_corrupt_checkpoint(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    code, err = run_cli(["evaluate", "--checkpoint", tmp_path / "none", "--data", data], capsys)
    assert_one_line_error(code, err, "--checkpoint", "no such file or folder")
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"garbage")
    code, err = run_cli(["evaluate", "--checkpoint", bad, "--data", data], capsys)
    assert_one_line_error(code, err, "checkpoint.pt: is a text file, not a Multilogue checkpoint; pass a checkpoint.pt written by `cli.py train`")


def test_resume_without_a_run(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    code, err = run_cli(train_args(data, tmp_path / "run", "--resume"), capsys)
    assert_one_line_error(code, err, "run/last.pt: nothing to resume; start the run without --resume")
    assert not (tmp_path / "run").exists()


def test_unlabelled_task(tmp_path, capsys):
    ds = synthetic_dataset()
    for v in ds["ID"]:
        ds["labels"][v][:, 0] = np.nan
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(ds))
    code, err = run_cli(train_args(path, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "d.pkl: no training utterance has a 'sentiment' label; label the data or pick another --task/--emotion")
    assert not (tmp_path / "run").exists()


def test_bad_flag_values(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in train_args(data, tmp_path / "run", "--valid-ratio", "1.5")])
    assert e.value.code == 2
    assert "argument --valid-ratio: 1.5 is out of range; give a number in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--task", "sarcasm", "--data", str(data), "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "argument --task: invalid choice: 'sarcasm'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_seed_pickle_imports_and_trains_directly(tmp_path, capsys):
    from tests.test_dataset import _seed_tuple

    seed = tmp_path / "seed.pkl"
    seed.write_bytes(pickle.dumps(_seed_tuple("float", "onehot")))
    assert cli.main(["import", "seed", str(seed), "-o", str(tmp_path / "d.pkl")]) == 0
    assert "3 videos" in capsys.readouterr().out
    assert cli.main(["info", "data", str(tmp_path / "d.pkl")]) == 0
    assert "dims text=5 audio=4 visual=3" in capsys.readouterr().out
    # train --data takes the seed's format as it is
    assert cli.main(["train", "--task", "regression", "--data", str(seed), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 0
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_import_seed_refuses_a_dataset_dict(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    code, err = run_cli(["import", "seed", data, "-o", tmp_path / "out.pkl"], capsys)
    assert_one_line_error(code, err, "already a dataset dict")
    assert not (tmp_path / "out.pkl").exists()


@pytest.mark.parametrize("flag,value,expect", [
    ("--patience", "0", "0 is out of range; give an integer >= 1"), ("--lr", "-1", "-1 is out of range; give a number > 0"),
    ("--l2", "-0.1", "-0.1 is out of range; give a number >= 0"), ("--dropout", "1.5", "1.5 is out of range; give a number in [0, 1)"),
    ("--rec-dropout", "-0.2", "-0.2 is out of range; give a number in [0, 1)"),
])
def test_out_of_range_hyperparameters(tmp_path, capsys, flag, value, expect):
    data = write_synthetic(tmp_path / "d.pkl")
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in train_args(data, tmp_path / "run", flag, value)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.splitlines() == [f"cli.py train: error: argument {flag}: {expect}"]
    assert not (tmp_path / "run").exists()


def test_out_that_is_a_file_or_dataset_output_that_is_a_folder(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    (tmp_path / "run").write_text("not a folder")
    code, err = run_cli(train_args(data, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "--out", "run: is a file; pass a folder")
    assert (tmp_path / "run").read_text() == "not a folder"
    from tests.test_dataset import _seed_tuple

    seed = tmp_path / "seed.pkl"
    seed.write_bytes(pickle.dumps(_seed_tuple()))
    (tmp_path / "folder").mkdir()
    code, err = run_cli(["import", "seed", seed, "-o", tmp_path / "folder"], capsys)
    assert_one_line_error(code, err, "-o", "folder: is a folder; pass a file path to write")
    assert list((tmp_path / "folder").iterdir()) == []


def test_resume_checks_task_and_features(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    assert cli.main([str(a) for a in train_args(data, tmp_path / "run")]) == 0
    capsys.readouterr()
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "run").rglob("*") if p.is_file()}
    code, err = run_cli(["train", "--task", "regression", "--data", data, "--out", tmp_path / "run", "--resume"], capsys)
    assert_one_line_error(code, err, "run/last.pt: this run trained binary; resume it with the same --task/--emotion, or use another --out")
    other = write_synthetic(tmp_path / "other.pkl", dims=(20, 7, 6))
    code, err = run_cli(train_args(other, tmp_path / "run", "--resume"), capsys)
    assert_one_line_error(code, err, "last.pt: the run was trained on other features than", "other.pkl (audio 12 vs 7, checkpoint vs data); "
                          "resume with the same --data")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "run").rglob("*") if p.is_file()} == files
    (tmp_path / "run" / "last.pt").write_bytes(b"torn")
    code, err = run_cli(train_args(data, tmp_path / "run", "--resume"), capsys)
    assert_one_line_error(code, err, "last.pt: is a text file, not a resume state (last.pt of `cli.py train`)")
    whole = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    (tmp_path / "run" / "last.pt").write_bytes(whole[: len(whole) // 2])  # a partial copy
    code, err = run_cli(train_args(data, tmp_path / "run", "--resume"), capsys)
    assert_one_line_error(code, err, "last.pt: not a readable resume state (last.pt of `cli.py train`): truncated or damaged")


def test_checkpoint_from_other_extractors_of_the_same_width(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl")
    assert cli.main([str(a) for a in train_args(data, tmp_path / "run")]) == 0
    ds = synthetic_dataset()
    ds["meta"]["features"]["audio"] = {"name": "mfcc", "params": {"n_mfcc": 6}, "dim": 12}
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps(ds))
    capsys.readouterr()
    code, err = run_cli(["evaluate", "--checkpoint", tmp_path / "run", "--data", other], capsys)
    assert_one_line_error(code, err, "other extractors", "audio synthetic")


# ------------------------------------------------------------------ the campaign's classes of bad input, through the CLI
def _campaign(tmp_path, case: str) -> tuple[list, str]:
    """(argv, the message expected on the one line) of one hostile-but-fair input; files it needs are made here."""
    data = write_synthetic(tmp_path / "d.pkl", n_videos=6)
    train = ["train", "--task", "binary", "--data", data, "--out", tmp_path / "run", "--epochs", "1"]
    if case == "lr-nan":
        return [*train, "--lr", "nan"], "argument --lr: 'nan' is not a finite number; give a number > 0"
    if case == "l2-inf":
        return [*train, "--l2", "inf"], "argument --l2: 'inf' is not a finite number; give a number >= 0"
    if case == "epochs-fraction":
        return [*train, "--batch-size", "1.5"], "argument --batch-size: '1.5' is not an integer >= 1"
    if case == "seed-too-big":
        return [*train, "--seed", str(2**40)], f"argument --seed: {2**40} is out of range; give an integer in 0..4294967295"
    if case == "grid-inf":
        return [*train, "--grid", "lr=1e-3,inf"], "--grid lr=1e-3,inf: 'inf' is not a finite number; give a number > 0"
    if case == "seeds-nan":
        return [*train, "--seeds", "1,nan"], "argument --seeds: '1,nan': 'nan' is not an integer in 0..4294967295"
    if case == "fps-inf":
        return ["extract", tmp_path, "-o", tmp_path / "x.pkl", "--fps", "inf"], "argument --fps: 'inf' is not a finite number; give a number in (0, 120]"
    if case == "dims-absurd":
        return ["info", "model", "--dims", "300", "384", "1e9"], "argument --dims: '1e9' is not an integer in 1..65536"
    if case == "out-unwritable":
        return [*train[:-4], "--out", "/proc/multilogue/run"], "--out /proc/multilogue/run: cannot write here"
    if case == "out-is-the-data":
        return [*train[:-4], "--out", data], f"--out {data}: is a file; pass a folder"
    if case == "seed-onto-itself":
        return ["import", "seed", data, "-o", data], f"-o {data} is one of this command's inputs; write to a new file"
    if case == "csd-onto-labels":
        (tmp_path / "labels.csd").write_bytes(b"not read: the output is refused first")
        return ["import", "csd", "--labels", tmp_path / "labels.csd", "-o", tmp_path / "labels.csd"], "labels.csd is one of this command's inputs"
    if case == "dangling-data":
        (tmp_path / "link.pkl").symlink_to(tmp_path / "moved.pkl")
        return [*train[:4], tmp_path / "link.pkl", *train[5:]], f"link.pkl: a symbolic link to {tmp_path / 'moved.pkl'}, which does not exist; fix the link"
    if case == "dangling-checkpoint":
        (tmp_path / "model.pt").symlink_to(tmp_path / "moved.pt")
        return ["evaluate", "--checkpoint", tmp_path / "model.pt", "--data", data], \
            f"--checkpoint {tmp_path / 'model.pt'}: a symbolic link to {tmp_path / 'moved.pt'}, which does not exist"
    if case == "text-checkpoint":
        (tmp_path / "model.pt").write_text("101 reasons\n")
        return ["evaluate", "--checkpoint", tmp_path / "model.pt", "--data", data], "model.pt: is a text file, not a Multilogue checkpoint"
    if case == "fifo-data":
        os.mkfifo(tmp_path / "pipe.pkl")
        return [*train[:4], tmp_path / "pipe.pkl", *train[5:]], "pipe.pkl: is a named pipe (FIFO), not a regular file; pass a file"
    if case == "fifo-checkpoint":
        os.mkfifo(tmp_path / "pipe.pt")
        return ["evaluate", "--checkpoint", tmp_path / "pipe.pt", "--data", data], "pipe.pt: is a named pipe (FIFO), not a regular file"
    raise AssertionError(case)


CAMPAIGN = ["lr-nan", "l2-inf", "epochs-fraction", "seed-too-big", "grid-inf", "seeds-nan", "fps-inf", "dims-absurd", "out-unwritable",
            "out-is-the-data", "seed-onto-itself", "csd-onto-labels", "dangling-data", "dangling-checkpoint", "text-checkpoint",
            "fifo-data", "fifo-checkpoint"]


@pytest.mark.parametrize("case", CAMPAIGN)
def test_campaign_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    """Exit code 2, exactly one line on stderr, no traceback, the message that names the input and the fix, and not one
    file created or changed. Run as a user would (a subprocess, with a timeout: a FIFO that got opened would hang)."""
    import subprocess
    import sys
    from pathlib import Path

    argv, expected = _campaign(tmp_path, case)
    before = {p: (p.lstat().st_mtime_ns, p.is_file() and not p.is_symlink() and p.read_bytes()) for p in tmp_path.rglob("*") if not p.is_fifo()}
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(repo / "cli.py"), *map(str, argv)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err
    after = {p: (p.lstat().st_mtime_ns, p.is_file() and not p.is_symlink() and p.read_bytes()) for p in tmp_path.rglob("*") if not p.is_fifo()}
    assert after == before
