"""Corpus importers on small real samples of ../shared/data (skipped without it): MELD (CSVs, and clips through
extract), GoEmotions, RAVDESS; and their bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cli
from data.dataset import load_dataset
from demo.clipgen import astronaut, make_clip, tools_available
from pipeline.extraction.settings import ExtractSettings
from tests.synthetic import SHARED_DATA

MELD = SHARED_DATA / "meld"
needs_meld = pytest.mark.skipif(not MELD.is_dir(), reason="../shared/data/meld not present")


def meld_sample(tmp_path: Path, source: str, dialogues: int) -> Path:
    """The rows of MELD's first `dialogues` dialogues of a file, with its header."""
    lines = (MELD / source).read_text(encoding="utf-8").splitlines()
    import csv
    import io

    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[5]) < dialogues]
    out = tmp_path / source
    buf = io.StringIO()
    csv.writer(buf).writerows(keep)
    out.write_text(buf.getvalue(), encoding="utf-8")
    return out


@needs_meld
def test_import_meld_text(tmp_path, capsys):
    from pipeline.importers.corpora import read_meld

    train = meld_sample(tmp_path, "train_sent_emo.csv", 3)
    dev = meld_sample(tmp_path, "dev_sent_emo.csv", 2)
    out = tmp_path / "meld.pkl"
    assert cli.main(["import", "meld", str(train), "--test", str(dev), "-o", str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "wrote" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds["train"] == ["train_sent_emo/dia0", "train_sent_emo/dia1", "train_sent_emo/dia2"]
    assert ds["test"] == ["dev_sent_emo/dia0", "dev_sent_emo/dia1"]
    rows = read_meld(train)
    first = [r for r in rows if r["dialogue"] == 0]
    vid = "train_sent_emo/dia0"
    assert ds["speakers"][vid] == [r["speaker"] for r in first]  # the parties of the dialogue, in order
    assert len(set(ds["speakers"][vid])) >= 2
    assert ds["sentence_in_text"][vid] == [r["text"] for r in first]
    for r, labels in zip(first, ds["labels"][vid]):
        assert labels[0] == r["sentiment"]
        expected = np.zeros(6)
        if r["emotion"]:
            expected[["happiness", "sadness", "anger", "surprise", "disgust", "fear"].index(r["emotion"])] = 1
        np.testing.assert_array_equal(labels[1:], expected)
    assert ds["present"][vid][:, 0].all() and not ds["present"][vid][:, 1:].any()


def test_meld_bad_files_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("Utterance,Speaker,Emotion\nhi,Ross,joy\n", encoding="utf-8")
    assert cli.main(["import", "meld", str(bad), "-o", str(tmp_path / "x.pkl")]) == 2
    assert "not a MELD CSV, it lacks Sentiment, Dialogue_ID, Utterance_ID" in capsys.readouterr().err
    bad.write_text("Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\nhi,Ross,bliss,positive,0,0\n", encoding="utf-8")
    assert cli.main(["import", "meld", str(bad), "-o", str(tmp_path / "x.pkl")]) == 2
    err = capsys.readouterr().err
    assert "line 2: emotion 'bliss'" in err and err.count("\n") == 1
    assert not (tmp_path / "x.pkl").exists()


@pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng")
def test_import_meld_with_clips_extracts_each_utterance_and_regroups_dialogues(tmp_path):
    """MELD.Raw's layout: one clip per utterance (dia<D>_utt<U>.mp4); here generated ones."""
    csv_path = tmp_path / "train_sent_emo.csv"
    rows = [("I love this place", "Ross", "joy", "positive", 0, 0), ("It is awful", "Rachel", "disgust", "negative", 0, 1),
            ("Fine", "Ross", "neutral", "neutral", 0, 2), ("Where are you", "Joey", "surprise", "positive", 1, 0)]
    lines = ["Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"]
    lines += [f"{i},{t},{s},{e},{se},{d},{u},1,1,,"for i, (t, s, e, se, d, u) in enumerate(rows, 1)]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clips = tmp_path / "clips"
    for t, _, _, _, d, u in rows[:3]:  # dia1_utt0 is missing: left out with a warning
        make_clip(clips / f"dia{d}_utt{u}.mp4", [t], astronaut())
    from pipeline.importers.corpora import import_meld

    settings = ExtractSettings.create(audio="mfcc", cache_dir=tmp_path / "cache")
    ds = import_meld([csv_path], tmp_path / "m.pkl", clips=clips, settings=settings, workers=1, cache_dir=tmp_path / "cache")
    assert ds["ID"] == ["train_sent_emo/dia0"]
    vid = ds["ID"][0]
    assert ds["speakers"][vid] == ["Ross", "Rachel", "Ross"] and ds["sentence_in_text"][vid] == [r[0] for r in rows[:3]]
    assert ds["present"][vid].all()  # text, audio and a face in every utterance
    assert ds["audio_feat"][vid].shape == (3, 80) and ds["labels"][vid][1, 5] == 1  # disgust


@pytest.mark.skipif(not (SHARED_DATA / "goemotions").is_dir(), reason="../shared/data/goemotions not present")
def test_import_goemotions_sample(tmp_path):
    from pipeline.importers.corpora import import_goemotions

    ds = import_goemotions(SHARED_DATA / "goemotions", tmp_path / "ge.pkl", cache_dir=tmp_path / "c", limit=40)
    assert len(ds["train"]) == 80 and len(ds["test"]) == 40
    first = (SHARED_DATA / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    vid = f"train/{first[2]}"
    ids = [int(i) for i in first[1].split(",")]
    names = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 5: "sadness", 6: "surprise"}
    labels = ds["labels"][vid][0]
    assert np.isnan(labels[0])  # no sentiment in GoEmotions
    for col, name in enumerate(["happiness", "sadness", "anger", "surprise", "disgust", "fear"], 1):
        assert labels[col] == (1 if name in [names.get(i) for i in ids] else 0)
    with pytest.raises(Exception, match="Ekman grouping"):
        import_goemotions(tmp_path, tmp_path / "x.pkl")


@pytest.mark.skipif(not (SHARED_DATA / "ravdess").is_dir() or not tools_available(), reason="../shared/data/ravdess not present")
def test_import_ravdess_sample(tmp_path):
    """Four real clips (two actors, one held out): labels from the file names, whisper text, absent visual."""
    src = tmp_path / "ravdess"
    picks = ["Actor_01/03-01-05-02-01-01-01.flac", "Actor_01/03-01-02-01-02-01-01.flac",
             "Actor_19/03-01-03-01-01-02-19.flac", "Actor_19/03-01-08-02-02-01-19.flac"]
    for p in picks:
        (src / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED_DATA / "ravdess" / p, src / p)
    from pipeline.importers.corpora import import_ravdess

    report = import_ravdess(src, tmp_path / "r.pkl", ExtractSettings.create(audio="mfcc", visual="none", cache_dir=tmp_path / "cache"), workers=1)
    assert report.ok
    ds = load_dataset(tmp_path / "r.pkl")
    assert sorted(ds["test"]) == ["Actor_19/03-01-03-01-01-02-19", "Actor_19/03-01-08-02-02-01-19"]
    angry = ds["labels"]["Actor_01/03-01-05-02-01-01-01"][0]
    assert np.isnan(angry[0]) and angry[3] == 2 and angry[[1, 2, 4, 5, 6]].sum() == 0  # anger, strong intensity
    calm = ds["labels"]["Actor_01/03-01-02-01-02-01-01"][0]
    assert (calm[1:] == 0).all()  # calm counts as neutral
    assert "door" in ds["sentence_in_text"]["Actor_01/03-01-05-02-01-01-01"][0].lower()
    assert all(p.tolist() == [[True, True, False]] for p in ds["present"].values())
