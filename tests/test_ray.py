"""Extraction and training on a real Ray cluster: a head on 127.0.0.1 with two worker slots, started by `ray start`
for this module and stopped at its end (tests/ray_head.py). Ray extraction gives the local path's dataset byte
for byte, with the same failures.json, shared or with the clips shipped; the caches serve each other; a worker
that crashes fails only its clip, after a retry; a killed driver's rerun resumes from the cache; train --ray
gives the runs the local path gives and resumes as run_plan does."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from data.dataset import MODALITIES, load_dataset
from demo.clipgen import make_clip, tools_available
from tests.ray_head import free_port, ray_head
from tests.synthetic import write_synthetic

# not imported here: Ray reads its authentication settings when first imported, after the head sets them
pytestmark = [pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH"),
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (requirements.txt pins it)")]

REPO = Path(__file__).resolve().parents[1]
FAST = {"visual": "none", "audio": "mfcc"}  # cheap extractors where features are not the point
FAST_ARGS = ["--visual", "none", "--audio-features", "mfcc"]
SMALL = ["--epochs", "1", "--batch-size", "4", "--hidden-size", "8"]


def cli(*argv) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def head():
    with ray_head(num_cpus=2) as address:
        yield address


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Five clips with transcripts (one in a subfolder, one with a non-ASCII name) and one corrupt file."""
    root = tmp_path_factory.mktemp("rayclips")
    folder = root / "videos"
    for name, words in (("a", "the weather is lovely today"), ("b", "this is terrible news"), ("talk/c", "thank you very much"),
                        ("café ü", "a short voice note"), ("e", "good morning everyone")):
        make_clip(folder / f"{name}.wav", [words])
        (folder / f"{name}.txt").write_text(words + "\n", encoding="utf-8")
    (folder / "corrupt.mp4").write_bytes(os.urandom(4096))
    return folder


def same_dataset(a: dict, b: dict) -> None:
    assert a["ID"] == b["ID"] and a["train"] == b["train"] and a["test"] == b["test"]
    assert a["sentence_in_text"] == b["sentence_in_text"] and a["meta"]["timings"] == b["meta"]["timings"]
    assert a["meta"]["features"] == b["meta"]["features"]
    for vid in a["ID"]:
        for m in MODALITIES:  # byte for byte
            assert a[f"{m}_feat"][vid].dtype == b[f"{m}_feat"][vid].dtype and a[f"{m}_feat"][vid].tobytes() == b[f"{m}_feat"][vid].tobytes(), (vid, m)
        assert a["present"][vid].tobytes() == b["present"][vid].tobytes()
        np.testing.assert_array_equal(a["labels"][vid], b["labels"][vid])


# ------------------------------------------------------------------ extraction
def test_extract_on_ray_is_the_local_dataset_and_caches_are_shared(head, clips, tmp_path, monkeypatch):
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    monkeypatch.chdir(clips.parent)  # a relative folder: failure reasons must name the clips as locally
    settings = ExtractSettings.create(cache_dir=tmp_path / "c_local", **FAST)
    local = extract_folder("videos", tmp_path / "local" / "ds.pkl", settings, workers=2)
    assert cli("extract", "videos", "-o", tmp_path / "ray" / "ds.pkl", "--cache-dir", tmp_path / "c_ray", "--ray", head, *FAST_ARGS) == 1
    failures = (tmp_path / "local" / "failures.json").read_text()
    assert json.loads(failures)[0]["clip"] == "corrupt.mp4" and "videos/corrupt.mp4: " in failures
    assert (tmp_path / "ray" / "failures.json").read_text() == failures
    same_dataset(load_dataset(tmp_path / "local" / "ds.pkl"), load_dataset(tmp_path / "ray" / "ds.pkl"))

    settings = ExtractSettings.create(cache_dir=tmp_path / "c_ship", **FAST)
    shipped = extract_folder("videos", tmp_path / "ship" / "ds.pkl", settings, ray=head, ship_clips=True)
    assert (shipped.computed, shipped.cached, shipped.backend) == (5, 0, f"ray {head}")
    assert (tmp_path / "ship" / "failures.json").read_text() == failures
    same_dataset(load_dataset(tmp_path / "local" / "ds.pkl"), load_dataset(tmp_path / "ship" / "ds.pkl"))
    # the extractors (GloVe, the MFCC transform) were built once per worker process, not per clip
    assert shipped.worker_builds and set(shipped.worker_builds.values()) == {1} and len(shipped.worker_builds) <= 2

    # one cache format and key: what the cluster filled serves a local run, and the other way round
    settings = ExtractSettings.create(cache_dir=tmp_path / "c_ray", **FAST)
    again = extract_folder("videos", tmp_path / "again.pkl", settings, workers=1)
    assert (again.cached, again.computed) == (5, 0)
    settings = ExtractSettings.create(cache_dir=tmp_path / "c_local", **FAST)
    back = extract_folder("videos", tmp_path / "back.pkl", settings, ray=head, ship_clips=True)
    assert (back.cached, back.computed) == (5, 0)
    assert local.ok is False and len(local.failures) == 1


class Crashes:
    """A text extractor that kills its process on clips named crash*; it notes each attempt in a file."""

    name, modality, dim = "crashes", "text", 2

    def __init__(self, log: str = "") -> None:
        self.log = log

    @property
    def params(self) -> dict:
        return {"log": self.log}

    def __call__(self, media, segments) -> np.ndarray:
        if Path(media.path).name.startswith("crash"):
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()}\n")
            os._exit(3)
        return np.ones((len(segments), 2), dtype=np.float32)


@pytest.fixture
def crashes():
    import extractors

    extractors.register_extractor("text", "crashes", Crashes)
    yield
    extractors.REGISTRY["text"].pop("crashes")
    extractors._ENTRIES["text"].pop("crashes")


def test_a_crashing_worker_fails_only_its_clip_after_a_retry(head, crashes, tmp_path):
    """Also: an extractor registered at run time, in a module the workers do not have, reaches them."""
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    folder = tmp_path / "videos"
    for name in ("fine", "crash", "well"):
        make_clip(folder / f"{name}.wav", [f"{name} clip here"])
        (folder / f"{name}.txt").write_text(f"{name} clip here\n", encoding="utf-8")
    attempts = tmp_path / "attempts.txt"
    from pipeline.extraction.settings import extractor_choices

    choices = extractor_choices("crashes", "mfcc", "none")
    choices["text"][1]["log"] = str(attempts)
    settings = ExtractSettings.create(cache_dir=tmp_path / "cache", choices=choices)
    report = extract_folder(folder, tmp_path / "ds.pkl", settings, ray=head)
    assert report.failures == [{"clip": "crash.wav", "reason": f"{folder / 'crash.wav'}: a worker process died on it repeatedly (crash or out of memory)"}]
    assert sorted(report.videos) == ["fine", "well"]
    assert len(attempts.read_text().split()) == 2  # tried, then retried once in a fresh worker process


def test_killed_driver_resumes_from_the_cache(head, tmp_path):
    folder = tmp_path / "videos"
    for i in range(6):
        make_clip(folder / f"c{i}.wav", [f"clip number {i}"])
        (folder / f"c{i}.txt").write_text(f"clip number {i}\n", encoding="utf-8")
    cache, out = tmp_path / "cache", tmp_path / "ds.pkl"
    cmd = [sys.executable, str(REPO / "cli.py"), "extract", str(folder), "-o", str(out), "--cache-dir", str(cache), "--ray", head,
           "--workers", "1", *FAST_ARGS]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and proc.poll() is None and not list(cache.rglob("*.npz")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.rglob("*.npz")))
    assert 1 <= done < 6 and not out.exists()
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    report = extract_folder(folder, out, ExtractSettings.create(cache_dir=cache, **FAST), ray=head)
    assert report.ok and report.cached >= done and report.cached + report.computed == 6


def test_ray_user_errors_are_one_line(clips, tmp_path, capsys):
    port = free_port()
    assert cli("extract", clips, "-o", tmp_path / "ds.pkl", "--ray", f"127.0.0.1:{port}", *FAST_ARGS) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --ray 127.0.0.1:{port}: no Ray head answers there") and "ray start --head" in err and "\n" not in err
    assert cli("extract", clips, "-o", tmp_path / "ds.pkl", "--ray", "nowhere", *FAST_ARGS) == 2
    assert "expected auto or HOST:PORT" in capsys.readouterr().err
    assert cli("extract", clips, "-o", tmp_path / "ds.pkl", "--ray-ship-clips", *FAST_ARGS) == 2
    data = write_synthetic(tmp_path / "d.pkl", n_videos=6)
    assert cli("train", "--task", "binary", "--data", data, "--out", tmp_path / "r", "--gpus-per-run", "1") == 2
    assert "--gpus-per-run goes with --ray" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_local_instance_binds_loopback_only(monkeypatch):
    import shutil
    import tempfile

    import ray

    from pipeline.cluster import ray_cluster

    temp = tempfile.mkdtemp(prefix="mlray", dir="/tmp")  # its session folder (short: socket paths), removed after
    monkeypatch.setenv("RAY_TMPDIR", temp)
    try:
        with ray_cluster(num_cpus=1) as cluster:
            assert cluster.head is None and cluster.cpus == 1 and cluster.nodes == 1
            assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
            assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
        assert not ray.is_initialized()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------ training
def files_of(folder: Path) -> list[str]:
    """Relative paths of a run folder's files, TensorBoard's (named after host, pid and time) by folder only."""
    return sorted(p.parent.relative_to(folder).as_posix() + "/events" if p.name.startswith("events.out.tfevents") else p.relative_to(folder).as_posix()
                  for p in folder.rglob("*") if p.is_file())


def same_run(a: Path, b: Path) -> None:
    assert files_of(a) == files_of(b)
    ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert ma["best_epoch"] == mb["best_epoch"] and ma["test"] == pytest.approx(mb["test"], rel=1e-4, abs=1e-5)
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())
    sa, sb = (torch.load(p / "checkpoint.pt", weights_only=True)["state_dict"] for p in (a, b))
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5)


def test_train_on_ray_writes_the_runs_the_local_path_writes(head, tmp_path, capsys):
    data = write_synthetic(tmp_path / "d.pkl", n_videos=10)
    assert cli("train", "--task", "emotion", "--emotion", "all", "--data", data, "--out", tmp_path / "ray", "--ray", head, *SMALL) == 0
    assert "| fear |" in capsys.readouterr().out
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert set(summary) == {"happiness", "sadness", "anger", "surprise", "disgust", "fear"}
    for emotion in ("fear", "happiness"):  # the runs of --emotion all are the runs of --emotion E
        assert cli("train", "--task", "emotion", "--emotion", emotion, "--data", data, "--out", tmp_path / emotion, *SMALL) == 0
        same_run(tmp_path / "ray" / emotion, tmp_path / emotion)

    seeds = ["train", "--task", "regression", "--data", data, "--seeds", "1,2", *SMALL]
    assert cli(*seeds, "--out", tmp_path / "ens_ray", "--ray", head) == 0
    assert cli(*seeds, "--out", tmp_path / "ens") == 0
    for member in ("seed-1", "seed-2"):
        same_run(tmp_path / "ens_ray" / member, tmp_path / "ens" / member)
    ens_ray, ens = (json.loads((p / "metrics.json").read_text()) for p in (tmp_path / "ens_ray", tmp_path / "ens"))
    assert ens_ray["ensemble"] == [1, 2] and ens_ray["test"] == pytest.approx(ens["test"], rel=1e-4, abs=1e-5)

    # --resume as run_plan has it: a member that did not finish trains again, the finished one is re-read
    for f in (tmp_path / "ens_ray" / "seed-2").rglob("*"):
        if f.is_file():
            f.unlink()
    assert cli(*seeds, "--out", tmp_path / "ens_ray", "--ray", head, "--resume") == 0
    same_run(tmp_path / "ens_ray" / "seed-2", tmp_path / "ens" / "seed-2")
    assert json.loads((tmp_path / "ens_ray" / "metrics.json").read_text())["test"] == pytest.approx(ens["test"], rel=1e-4, abs=1e-5)
