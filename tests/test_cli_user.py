"""The CLI as a new user meets it: run outside the virtualenv it says which python to use in one line; `info` describes
the shipped model (and any run folder or checkpoint); `predict --help` names the shipped model as the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cli
from tests.synthetic import write_synthetic

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "model" / "pretrained"


def _outside(tmp_path: Path, leave_out: str | None) -> subprocess.CompletedProcess:
    """`python -S cli.py predict clip.mp4` with none of the project's packages (leave_out None: a bare Python, as a
    system python3 is), or with all of this environment's but `leave_out` (e.g. torch)."""
    path = [str(ROOT)]
    if leave_out is not None:
        site = Path(np.__file__).resolve().parents[1]
        farm = tmp_path / "site-packages"
        farm.mkdir()
        for entry in site.iterdir():
            if entry.name.split("-")[0] != leave_out:
                (farm / entry.name).symlink_to(entry)
        path.append(str(farm))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, "-S", "cli.py", "predict", "clip.mp4"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("leave_out, missing", [(None, "numpy"), ("torch", "torch")])
def test_outside_the_virtualenv_predict_says_which_python_in_one_line(tmp_path, leave_out, missing):
    proc = _outside(tmp_path, leave_out)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith(f"error: this Python ({sys.executable}) has no module '{missing}'")
    assert "cli.py predict clip.mp4" in lines[0] and (".venv/bin/python" in lines[0] or "make install" in lines[0])


def test_make_install_without_the_disk_room_says_so_in_one_line_before_writing_anything(tmp_path):
    """The virtualenv is about 9.2 GB: with less room than the Makefile asks for, `make install` stops at once with one
    line (pip would fail half-way with an OSError), and no virtualenv is started."""
    venv = tmp_path / "venv"
    # a make of its own: not a sub-make of a `make -C DIR test` that runs this suite (whose flags add directory lines)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-s", "install", f"VENV={venv}", "VENV_NEEDS_KB=999999999999"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and not venv.exists()
    (line,) = [line for line in proc.stdout.splitlines() if line.strip()]
    assert line.startswith(f"{ROOT}: installing needs about ") and line.endswith("free disk space and rerun")


@pytest.mark.skipif(not (SHIPPED / "report.json").is_file(), reason="no shipped model in model/pretrained")
def test_info_describes_the_shipped_model(capsys):
    assert cli.main(["info", "model/pretrained"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # long lines are wrapped
    report = json.loads((SHIPPED / "report.json").read_text())
    meld = report["emotion"]["corpora"]["meld"]["model"]["f1_weighted"]
    mosi = report["sentiment"]["corpora"]["mosi"]["model"]["accuracy_binary"]
    right = sum(r["predicted"] == r["acted"] for r in report["clips"]["cremad"])
    for words in ("model/pretrained: 2 models", "MODEL_CARD.md", "regression", "emotion-class", "neutral when |score| < 0.5",
                  "ensemble of 3", "float16", "text minilm (384-d", "audio opensmile (88-d", "feature_set=eGeMAPSv02", "visual none",
                  "whisper tiny.en", f"accuracy_binary {mosi:.1f}", f"f1_weighted {meld:.1f}", f"{right} of 12 acted emotions",
                  "calibrated at temperature", "the face by the facemesh extractor's", "CC BY-NC-SA 4.0", "non-commercial",
                  "research use only"):
        assert words in out, words
    assert str(ROOT) not in out
    assert cli.main(["info", str(SHIPPED / "emotion" / "checkpoint.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (model,) = info["models"]
    assert model["task"] == "emotion-class" and model["classes"][0] == "neutral" and model["members"] == 3
    assert model["features"]["audio"]["params"]["feature_set"] == "eGeMAPSv02" and model["test_metrics"]["f1_weighted"] > 0


def test_info_describes_any_run_folder(tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=8)
    run = tmp_path / "runs" / "sentiment"
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(run), "--epochs", "1", "--grid",
                     "hidden-size=8"]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "runs")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("runs: 1 model (model card: none)") and "sentiment/checkpoint.pt: regression" in out
    assert "single run, float32" in out and "text synthetic (20-d" in out and "test split (metrics.json): accuracy_binary" in out
    # refusals: one line each
    assert cli.main(["info", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli.main(["info", "data"])
    assert stop.value.code == 2 and "takes one dataset file" in capsys.readouterr().err


def test_predict_help_names_the_shipped_model_as_the_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: the shipped model in model/pretrained" in out
    assert "runs/demo" not in out
    assert "neutral when |sentiment| < 0.5" in out


def test_help_imports_no_torch():
    """`cli.py --help` and a subcommand's help start without torch (the environment check only locates it)."""
    probe = ("import sys, runpy\nsys.argv = ['cli.py', 'predict', '--help']\ntry:\n    runpy.run_path('cli.py', run_name='__main__')\n"
             "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--checkpoint" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "False"
