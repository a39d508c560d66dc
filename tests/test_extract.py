"""The extraction pipeline end to end: generated clips and real ones -> dataset -> one epoch of training;
failures per clip, failures.json and exit codes, --strict, the per-clip cache and resuming, workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data.dataset import load_dataset
from core.errors import UserError
from demo.clipgen import astronaut, make_clip, make_silent_video, tools_available

pytestmark = pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
FAST = ["--visual", "none", "--audio-features", "mfcc"]  # cheap extractors where features are not the point

def srt(cues: list[tuple[float, float, str]]) -> str:
    def clock(x: float) -> str:
        return f"00:{int(x // 60):02d}:{x % 60:06.3f}".replace(".", ",")

    return "".join(f"{i}\n{clock(a)} --> {clock(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def cli(*argv: str) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five generated clips covering every transcript route, and labels.csv; extracted once with the defaults."""
    root = tmp_path_factory.mktemp("corpus")
    folder = root / "videos"
    face = astronaut()
    said = make_clip(folder / "talk" / "dialogue.mp4", ["the weather is lovely today", "I am very happy to see you", "this is terrible news"], face)
    cues = [(s.start, s.end, f"{who}: {s.text}") for s, who in zip(said, ["ALICE", "BOB", "ALICE"])]
    (folder / "talk" / "dialogue.srt").write_text(srt(cues), encoding="utf-8")
    lines = ["good morning everyone", "what a horrible day", "thank you very much"]
    spans = [(seg.start, seg.end) for seg in make_clip(folder / "talk" / "lines.mp4", lines, face, gap=0.8)]
    (folder / "talk" / "lines.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    make_clip(folder / "labelled.mp4", ["I love this", "I hate that"], face, gap=0.5)
    (folder / "labelled.csv").write_text("start,end,speaker,text,sentiment,happiness,anger\n"
                                         "0.2,1.1,Zoë,I love this,2.5,2,0\n1.5,2.6,Zoë,I hate that,-2,0,2.5\n", encoding="utf-8")
    make_clip(folder / "café ü.wav", ["a short voice note"])
    (folder / "café ü.txt").write_text("\ufeffNARRATOR: a short voice note\r\n", encoding="utf-8")
    make_clip(folder / "auto.mp4", ["nobody wrote this down"], face)
    (folder / "labels.csv").write_text("video,utterance,sentiment,surprise,split\n"
                                       "talk/dialogue,1,3,1.5,test\nlabelled,0,1,,train\n", encoding="utf-8")
    out = root / "out" / "dataset.pkl"
    calls = []
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create(cache_dir=root / "cache")
    report = extract_folder(folder, out, settings, workers=1, progress=lambda d, t, **k: calls.append((d, t, k)))
    return {"folder": folder, "out": out, "report": report, "ds": load_dataset(out), "spans": spans, "cues": cues, "calls": calls, "root": root}


def test_dataset_shapes_specs_and_meta(corpus):
    ds, report = corpus["ds"], corpus["report"]
    assert report.ok and report.computed == 5 and report.cached == 0
    assert sorted(ds["ID"]) == ["auto", "café ü", "labelled", "talk/dialogue", "talk/lines"]
    feats = ds["meta"]["features"]
    assert (feats["text"]["name"], feats["text"]["dim"]) == ("glove", 50)
    assert (feats["audio"]["name"], feats["audio"]["dim"], feats["audio"]["params"]["feature_set"]) == ("opensmile", 384, "IS09")
    assert (feats["visual"]["name"], feats["visual"]["dim"]) == ("facemesh", 19)
    for vid in ds["ID"]:
        n = len(ds["speakers"][vid])
        for m, d in (("text", 50), ("audio", 384), ("visual", 19)):
            arr = ds[f"{m}_feat"][vid]
            assert arr.shape == (n, d) and arr.dtype == np.float32 and np.isfinite(arr).all()
        assert len(ds["meta"]["timings"][vid]) == n
    assert ds["meta"]["audio_only"] == ["café ü"] and not ds["visual_feat"]["café ü"].any()
    # presence: the audio-only clip has no visual modality; every other utterance has all three
    assert ds["meta"]["format_version"] == 2
    for vid in ds["ID"]:
        expected = [True, True, vid != "café ü"]
        assert ds["present"][vid].dtype == bool and (ds["present"][vid] == expected).all(), vid
    assert ds["meta"]["automatic_text"] == {"auto": "whisper tiny.en"}  # Whisper transcribed the clip without transcript
    assert ds["meta"]["features"]["asr"]["name"] == "whisper" and ds["meta"]["features"]["asr"]["params"]["model"] == "tiny.en"
    assert ds["meta"]["provenance"]["clips"]["café ü"]["file"] == "café ü.wav"
    assert json.loads((corpus["out"].parent / "failures.json").read_text()) == []
    assert corpus["calls"][-1][:2] == (5, 5) and [c[0] for c in corpus["calls"]] == [0, 1, 2, 3, 4, 5]


def test_transcript_routes(corpus):
    ds = corpus["ds"]
    assert ds["speakers"]["talk/dialogue"] == ["ALICE", "BOB", "ALICE"]
    assert ds["sentence_in_text"]["talk/dialogue"][1] == "I am very happy to see you"
    assert ds["meta"]["timings"]["talk/dialogue"][0] == [pytest.approx(0.2, abs=1e-3), pytest.approx(corpus["cues"][0][1], abs=1e-3)]
    assert ds["speakers"]["café ü"] == ["NARRATOR"] and ds["meta"]["timings"]["café ü"][0][0] == 0.0
    assert ds["meta"]["provenance"]["clips"]["talk/lines"]["timing"] == "aligned"
    for (start, end), (t0, t1) in zip(ds["meta"]["timings"]["talk/lines"], corpus["spans"]):
        assert abs(start - t0) < 0.4 and abs(end - t1) < 0.4  # forced alignment recovers the generated spans
    auto = ds["sentence_in_text"]["auto"]
    assert len(auto) >= 1 and all(isinstance(s, str) for s in auto)


def test_visual_features_see_the_face(corpus):
    vis = corpus["ds"]["visual_feat"]["talk/dialogue"]
    assert (vis[:, -1] > 0.5).all()  # face_fraction: the generated clips show a real face throughout


def test_labels_from_transcript_csv_and_labels_csv(corpus):
    ds = corpus["ds"]
    lab = ds["labels"]["labelled"]
    assert lab[0, 0] == 1.0  # labels.csv overrides the transcript's 2.5
    assert lab[0, 1] == 2 and lab[1, 0] == -2 and lab[1, 3] == 2.5 and np.isnan(lab[0, 2])
    dlg = ds["labels"]["talk/dialogue"]
    assert dlg[1, 0] == 3 and dlg[1, 4] == 1.5 and np.isnan(dlg[0]).all() and np.isnan(dlg[2]).all()
    assert np.isnan(ds["labels"]["auto"]).all()
    assert "talk/dialogue" in ds["test"] and "labelled" in ds["train"]
    assert sorted(ds["train"] + ds["test"]) == sorted(ds["ID"])


def test_extract_then_train_one_epoch(corpus, tmp_path):
    train = pytest.importorskip("pipeline.training.train", reason="pipeline/training/train.py is not there yet")
    from model.config import TrainConfig

    ds = load_dataset(corpus["out"])
    for vid in ds["ID"]:  # give every utterance a sentiment so both classes exist in training
        n = len(ds["speakers"][vid])
        ds["labels"][vid][:, 0] = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    ds["train"], ds["test"] = [v for v in ds["ID"] if v != "labelled"], ["labelled"]
    metrics = train.run_training(ds, tmp_path / "run", TrainConfig.for_task("binary", epochs=1, batch_size=2, valid_ratio=0.0, device="cpu"))
    assert metrics["epochs_run"] == 1 and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_rerun_is_all_cached(corpus, tmp_path):
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create(cache_dir=corpus["root"] / "cache")
    report = extract_folder(corpus["folder"], tmp_path / "again.pkl", settings, workers=1)
    assert report.cached == 5 and report.computed == 0
    again = load_dataset(tmp_path / "again.pkl")
    for vid in corpus["ds"]["ID"]:
        np.testing.assert_array_equal(again["audio_feat"][vid], corpus["ds"]["audio_feat"][vid])


# ------------------------------------------------------------------ failures
@pytest.fixture
def broken(tmp_path):
    folder = tmp_path / "videos"
    make_clip(folder / "good.mp4", ["this one works"])
    (folder / "corrupt.mp4").write_bytes(os.urandom(4096))
    (folder / "empty.mp4").write_bytes(b"")
    make_silent_video(folder / "silent.mp4")
    make_clip(folder / "latin.wav", ["hello"])
    (folder / "latin.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    make_clip(folder / "late.wav", ["hello"])
    (folder / "late.srt").write_text("1\n00:00:00,000 --> 00:00:30,000\nhello\n", encoding="utf-8")
    make_clip(folder / "badlabel.wav", ["hello"])
    (folder / "labels.csv").write_text("video,utterance,sentiment\nbadlabel,4,1\n", encoding="utf-8")
    return folder


def test_failures_are_reported_per_clip(broken, tmp_path, capsys):
    out = tmp_path / "out" / "ds.pkl"
    assert cli("extract", broken, "-o", out, "--workers", "1", "--cache-dir", tmp_path / "cache", *FAST) == 1
    failures = {f["clip"]: f["reason"] for f in json.loads((out.parent / "failures.json").read_text())}
    assert set(failures) == {"corrupt.mp4", "empty.mp4", "silent.mp4", "latin.wav", "late.wav", "badlabel.wav"}
    assert "corrupt" in failures["corrupt.mp4"]
    assert "zero-length" in failures["empty.mp4"]
    assert "no audio stream" in failures["silent.mp4"]
    assert "latin.txt: transcript is not UTF-8" in failures["latin.wav"]
    assert "past the clip's end" in failures["late.wav"]
    assert "utterance 4 but the clip has 1" in failures["badlabel.wav"]
    ds = load_dataset(out)
    assert ds["ID"] == ["good"] and ds["meta"]["failures"]
    err = capsys.readouterr().err
    assert "6 of 7 clips failed" in err and "silent.mp4" in err


def test_strict_stops_at_first_failure(broken, tmp_path, capsys):
    out = tmp_path / "ds.pkl"
    assert cli("extract", broken, "-o", out, "--workers", "1", "--strict", "--cache-dir", tmp_path / "cache", *FAST) == 1
    assert not out.exists()
    assert len(json.loads((tmp_path / "failures.json").read_text())) == 1
    # the error stands on a line of its own, not after the progress bar's last figures
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: --strict: stopped at ")


def test_user_errors_exit_2(tmp_path, capsys):
    assert cli("extract", tmp_path / "missing", "-o", tmp_path / "ds.pkl") == 2
    (tmp_path / "empty").mkdir()
    assert cli("extract", tmp_path / "empty", "-o", tmp_path / "ds.pkl") == 2
    assert cli("extract", tmp_path / "empty", "--glove", tmp_path / "nope.txt") == 2
    assert "no clips found" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"--test-ratio: 1.5 is out of range; give a number in \[0, 1\)"):
        from pipeline.extraction.folder import extract_folder

        extract_folder(tmp_path / "empty", tmp_path / "ds.pkl", test_ratio=1.5)


# ------------------------------------------------------------------ cache, resume, workers
@pytest.fixture
def small(tmp_path):
    folder = tmp_path / "videos"
    for i, words in enumerate(["one two three", "four five six", "seven eight nine", "ten eleven twelve"]):
        make_clip(folder / f"c{i}.wav", [words])
    return folder


def test_resume_uses_finished_clips_and_recovers_from_bad_cache(small, tmp_path):
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    cache = tmp_path / "cache"
    later = small / "c3.wav"
    later.rename(tmp_path / "c3.wav")
    settings = ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc")
    first = extract_folder(small, tmp_path / "a.pkl", settings, workers=1)
    assert first.computed == 3
    (tmp_path / "c3.wav").rename(later)
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 3
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # a torn entry (say, a disk that filled up)
    (entries[1].parent / ".stale.npz.tmp").write_bytes(b"left by kill -9")  # temp file of an interrupted write
    settings = ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc")
    second = extract_folder(small, tmp_path / "b.pkl", settings, workers=1)
    assert (second.cached, second.computed) == (2, 2)
    a, b = load_dataset(tmp_path / "a.pkl"), load_dataset(tmp_path / "b.pkl")
    for vid in a["ID"]:
        np.testing.assert_array_equal(a["audio_feat"][vid], b["audio_feat"][vid])
    (small / "c0.txt").write_text("a changed transcript\n", encoding="utf-8")
    settings = ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc")
    third = extract_folder(small, tmp_path / "c.pkl", settings, workers=1)
    assert (third.cached, third.computed) == (3, 1)  # the transcript is part of the key


def test_kill_9_then_rerun_loses_nothing(small, tmp_path):
    for i in range(4, 8):
        make_clip(small / f"c{i}.wav", [f"clip number {i}"])
    cache, out = tmp_path / "cache", tmp_path / "ds.pkl"
    cmd = [sys.executable, str(REPO / "cli.py"), "extract", str(small), "-o", str(out), "--workers", "1", "--cache-dir", str(cache), *FAST]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not list(cache.rglob("*.npz")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.rglob("*.npz")))
    assert done >= 1 and not out.exists()
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    report = extract_folder(small, out, ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc"), workers=1)
    assert report.ok and report.cached >= done and report.cached + report.computed == 8


def _session(sid: int) -> dict[int, int]:
    """{pid: parent pid} of the live processes of session `sid`, read from /proc (zombies are dead)."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found[int(entry.name)] = int(fields[1])
    return found


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_a_killed_extract_leaves_no_process_behind(small, tmp_path, how):
    """Only the command's own process is signalled, as a process manager or the OOM killer does: its fork server,
    its workers and the resource tracker must go too. SIGTERM stops it as Ctrl-C does (one line, exit 130)."""
    for i in range(4, 8):
        make_clip(small / f"c{i}.wav", [f"clip number {i} of the folder"])
    cmd = [sys.executable, str(REPO / "cli.py"), "extract", str(small), "-o", str(tmp_path / "ds.pkl"), "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), *FAST]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: orphans holding a pipe open would block its reading
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(parent not in (proc.pid, 1) for pid, parent in _session(proc.pid).items() if pid != proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "no worker started"
            time.sleep(0.02)  # until a worker (a child of the fork server, not of the command) runs
        os.kill(proc.pid, signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        code = proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _session(proc.pid) == {}
        assert not (tmp_path / "ds.pkl").exists()
        if how == "SIGTERM":
            err = log.read_text()
            assert code == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err, err
    finally:
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_fifo_named_like_a_clip_is_skipped_never_opened(small, tmp_path):
    """Opening a FIFO blocks until a writer comes: a clip that is one (or a broken link) is skipped with a line."""
    os.mkfifo(small / "pipe.wav")
    (small / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    out = tmp_path / "ds.pkl"
    cmd = [sys.executable, str(REPO / "cli.py"), "extract", str(small), "-o", str(out), "--workers", "1", "--cache-dir", str(tmp_path / "cache"), *FAST]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr
    assert "Skipping pipe.wav due to a named pipe (FIFO), not a regular file; only regular files are clips" in done.stderr
    assert f"Skipping gone.mp4 due to a symbolic link to {tmp_path / 'nowhere.mp4'}, which does not exist" in done.stderr
    assert "2 of 6 clips failed" in done.stderr and "Traceback" not in done.stderr
    assert load_dataset(out)["ID"] == ["c0", "c1", "c2", "c3"]
    assert {f["clip"] for f in json.loads((tmp_path / "failures.json").read_text())} == {"pipe.wav", "gone.mp4"}


def test_outputs_never_replace_inputs_and_are_checked_first(small, tmp_path, capsys):
    """-o onto a clip (directly or through a link), onto a transcript, or where nothing can be written: one line
    naming it, before any clip is read; the inputs are untouched and no cache is made."""
    (small / "c0.txt").write_text("one two three\n", encoding="utf-8")
    (tmp_path / "link.pkl").symlink_to(small / "c1.wav")
    before = {p.name: p.read_bytes() for p in small.iterdir()}
    cache = tmp_path / "cache"
    for out, expect in ((small / "c0.wav", f"-o {small / 'c0.wav'} is one of this command's inputs; write to a new file"),
                        (tmp_path / "link.pkl", f"-o {tmp_path / 'link.pkl'} is one of this command's inputs ({small / 'c1.wav'})"),
                        (small / "c0.txt", f"-o {small / 'c0.txt'} is one of this command's inputs"),
                        (Path("/proc/multilogue/ds.pkl"), "-o /proc/multilogue/ds.pkl: cannot write here")):
        assert cli("extract", small, "-o", out, "--cache-dir", cache, *FAST) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expect in err, err
        assert {p.name: p.read_bytes() for p in small.iterdir()} == before
        assert not cache.exists()


def test_two_workers_match_one(small, tmp_path):
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create(cache_dir=tmp_path / "c1", visual="none", audio="mfcc")
    one = extract_folder(small, tmp_path / "one.pkl", settings, workers=1)
    settings = ExtractSettings.create(cache_dir=tmp_path / "c2", visual="none", audio="mfcc")
    two = extract_folder(small, tmp_path / "two.pkl", settings, workers=2)
    assert one.ok and two.ok and two.computed == 4
    a, b = load_dataset(tmp_path / "one.pkl"), load_dataset(tmp_path / "two.pkl")
    assert a["ID"] == b["ID"] and a["train"] == b["train"]
    for vid in a["ID"]:
        np.testing.assert_allclose(a["audio_feat"][vid], b["audio_feat"][vid], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(a["text_feat"][vid], b["text_feat"][vid])


# ------------------------------------------------------------------ real clips
@pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason=f"real clips not at {REAL_CLIPS}")
def test_real_grid_clips(tmp_path):
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    report = extract_folder(REAL_CLIPS, tmp_path / "grid.pkl", ExtractSettings.create(cache_dir=tmp_path / "cache"), workers=1)
    assert report.ok and report.clips >= 4
    ds = load_dataset(tmp_path / "grid.pkl")
    for vid in ds["ID"]:
        assert ds["sentence_in_text"][vid] == [(REAL_CLIPS / f"{vid}.txt").read_text().strip()]
        assert ds["meta"]["timings"][vid] == [[0.0, pytest.approx(3.0, abs=0.05)]]
        assert ds["visual_feat"][vid][0, -1] > 0.9  # a face in (nearly) every frame
    audio = np.stack([ds["audio_feat"][v][0] for v in ds["ID"]])
    assert np.abs(audio[0] - audio[1]).max() > 0  # different speech, different features


@pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason=f"real clips not at {REAL_CLIPS}")
def test_align_lines_on_real_speech():
    from extractors.asr_pocketsphinx import align_lines
    from extractors.media import decode

    clips = sorted(REAL_CLIPS.glob("*.mpg"))[:2]
    audio = np.concatenate([decode(c, video=False).audio for c in clips])
    lines = [c.with_suffix(".txt").read_text().strip() for c in clips]
    spans, method = align_lines(audio, 16000, lines)
    assert method == "aligned"
    assert spans[0][1] <= 3.1 <= spans[1][0] + 0.2 and spans[1][1] <= len(audio) / 16000


def test_cache_key_changes_when_a_glove_file_is_replaced_in_place(tmp_path):
    import os

    from pipeline.extraction.cache import cache_key
    from pipeline.extraction.settings import ExtractSettings, resource_fingerprint

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("hello 0.1 0.2\n")
    specs = {"text": {"name": "glove", "params": {"path": str(vectors), "lowercase": True}, "dim": 2}}

    def key() -> str:
        return cache_key("clip", None, ExtractSettings(choices={}, specs=specs, asr={}, resources=resource_fingerprint(specs)), False)

    before = key()
    vectors.write_text("hello 0.3 0.4 \n")
    os.utime(vectors, ns=(1, 1))
    after = key()
    assert before != after


def test_absent_modalities_face_and_words(tmp_path):
    """An utterance without a face has no visual modality, one without known words no text; a rerun from
    the cache gives the same presence."""
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    folder = tmp_path / "videos"
    face = astronaut()
    said = make_clip(folder / "mixed.mp4", ["hello there my friend", "good night"], face)
    make_clip(folder / "grey.mp4", ["nobody is here"], None)  # a grey frame: no face at all
    cues = [(said[0].start, said[0].end, "hello there my friend"), (said[1].start, said[1].end, "zzqx qqzz")]
    (folder / "mixed.srt").write_text(srt(cues), encoding="utf-8")
    (folder / "grey.txt").write_text("nobody is here\n", encoding="utf-8")
    out = tmp_path / "ds.pkl"
    report = extract_folder(folder, out, ExtractSettings.create(cache_dir=tmp_path / "cache", audio="mfcc"), workers=1)
    ds = load_dataset(out)
    assert ds["present"]["mixed"].tolist() == [[True, True, True], [False, True, True]]
    assert ds["present"]["grey"].tolist() == [[True, True, False]]
    assert not ds["text_feat"]["mixed"][1].any() and not ds["visual_feat"]["grey"].any()  # absent rows are zeros
    assert ds["meta"]["no_face"] == {"grey": 1}
    settings = ExtractSettings.create(cache_dir=tmp_path / "cache", audio="mfcc")
    again = extract_folder(folder, tmp_path / "again.pkl", settings, workers=1)
    assert again.cached == 2 and report.computed == 2
    back = load_dataset(tmp_path / "again.pkl")
    for vid in ds["ID"]:
        np.testing.assert_array_equal(back["present"][vid], ds["present"][vid])


def test_cache_key_counts_the_transcriber_only_for_clips_without_transcript():
    from pipeline.extraction.cache import cache_key
    from pipeline.extraction.settings import ExtractSettings

    def key(transcript, asr):
        return cache_key("clip", transcript, ExtractSettings(choices={}, specs={}, asr=asr), False)

    whisper, sphinx = {"name": "whisper", "params": {"beam_size": 1}}, {"name": "pocketsphinx", "params": {}}
    assert key(None, whisper) != key(None, sphinx)
    assert key(None, whisper) != key(None, {"name": "whisper", "params": {"beam_size": 5}})
    assert key("srt-digest", whisper) == key("srt-digest", sphinx) == key("srt-digest", {})  # entries from before --asr stay valid


def test_asr_choice_is_recorded_and_only_untranscribed_clips_recompute(tmp_path, capsys):
    """--asr pocketsphinx still works; switching to Whisper recomputes the clips without transcript only;
    a clip without speech is one empty utterance spanning it."""
    folder = tmp_path / "videos"
    said = make_clip(folder / "timed.wav", ["good morning everyone"])
    (folder / "timed.srt").write_text(srt([(s.start, s.end, s.text) for s in said]), encoding="utf-8")
    make_clip(folder / "lines.wav", ["what a horrible day", "thank you very much"], gap=0.8)
    (folder / "lines.txt").write_text("what a horrible day\nthank you very much\n", encoding="utf-8")
    make_clip(folder / "bare.wav", ["I am very happy to see you"])
    quiet = np.random.default_rng(0).normal(0, 3e-4, 32000).astype(np.float32)
    import wave

    with wave.open(str(folder / "quiet.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((quiet * 32767).astype("<i2").tobytes())
    cache = tmp_path / "cache"
    assert cli("extract", folder, "-o", tmp_path / "ps.pkl", "--workers", "1", "--cache-dir", cache, "--asr", "pocketsphinx", *FAST) == 0
    assert "automatic text (pocketsphinx, no transcript): 2 clip(s)" in capsys.readouterr().out
    ps = load_dataset(tmp_path / "ps.pkl")
    assert ps["meta"]["features"]["asr"]["name"] == "pocketsphinx"
    assert ps["meta"]["automatic_text"] == {"bare": "pocketsphinx", "quiet": "pocketsphinx"}
    assert ps["sentence_in_text"]["quiet"] == [""] and ps["meta"]["timings"]["quiet"] == [[0.0, pytest.approx(2.0)]]

    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create(cache_dir=cache, visual="none", audio="mfcc")
    report = extract_folder(folder, tmp_path / "wh.pkl", settings, workers=1)
    assert (report.cached, report.computed) == (2, 2) and report.asr == "whisper tiny.en"
    wh = load_dataset(tmp_path / "wh.pkl")
    assert wh["meta"]["features"]["asr"]["name"] == "whisper" and wh["meta"]["automatic_text"] == {"bare": "whisper tiny.en", "quiet": "whisper tiny.en"}
    from extractors.asr import word_error_rate

    assert word_error_rate(["I am very happy to see you"], wh["sentence_in_text"]["bare"]) <= 0.2
    assert wh["sentence_in_text"]["quiet"] == [""] and wh["meta"]["timings"]["quiet"] == [[0.0, pytest.approx(2.0)]]
    for vid in ("timed", "lines"):  # cached: the same utterances whatever the transcriber
        assert wh["meta"]["timings"][vid] == ps["meta"]["timings"][vid] and wh["sentence_in_text"][vid] == ps["sentence_in_text"][vid]
    assert wh["meta"]["provenance"]["clips"]["lines"]["timing"] == "aligned"
    with pytest.raises(SystemExit) as exit_:
        cli("extract", folder, "-o", tmp_path / "x.pkl", "--asr", "kaldi")
    assert exit_.value.code == 2 and "invalid choice: 'kaldi'" in capsys.readouterr().err


def test_an_interrupt_while_workers_start_waits_until_they_have():
    """Ctrl-C (or SIGTERM through cli.py) during a pool's worker start is held until the start is done, then raised:
    a worker half-started when the pool shut down would print a traceback after "interrupted" (seen under load)."""
    from pipeline.extraction.pool import _interrupts_deferred

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own Ctrl-C handling, whatever ran before
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with _interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler would have run by now
                reached.append("end of block")
        assert reached == ["end of block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    finally:
        signal.signal(signal.SIGINT, before)
