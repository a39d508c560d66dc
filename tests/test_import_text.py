"""`import text`: CSV corpora -> text-only datasets, every bad row refused by line; training on them; evaluate on a CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cli
from data.dataset import load_dataset

POSITIVE = ["I love this, it is wonderful", "what a great and happy day", "thank you, this is excellent", "I really enjoy it"]
NEGATIVE = ["I hate this, it is awful", "what a terrible and sad day", "this is horrible news", "I am angry and upset"]


def write_corpus(path: Path, n_videos: int = 24, split: bool = True) -> Path:
    """Dialogues of two speakers alternating positive and negative lines, sentiment +-2, happiness on the positive."""
    rng = np.random.default_rng(0)
    lines = ["video,speaker,text,start,end,sentiment,happiness,anger" + (",split" if split else "")]
    for v in range(n_videos):
        t = 0.0
        for u in range(int(rng.integers(2, 6))):
            good = bool(rng.random() < 0.5)
            text = (POSITIVE if good else NEGATIVE)[int(rng.integers(4))]
            row = [f"dlg{v:02d}", "ann" if u % 2 == 0 else "bob", f'"{text}"', f"{t:.1f}", f"{t + 1.5:.1f}",
                   "2" if good else "-2", "1.5" if good else "0", "" if good else "2"]
            if split:
                row.append("test" if v % 4 == 0 else "train")
            lines.append(",".join(row))
            t += 2.0
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_text_happy_path(tmp_path, capsys):
    csv_path = write_corpus(tmp_path / "talks.csv")
    out = tmp_path / "talks.pkl"
    assert cli.main(["import", "text", str(csv_path), "-o", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert f"wrote {out}: 24 videos" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds["ID"][:2] == ["dlg00", "dlg01"] and len(ds["test"]) == 6 and "dlg00" in ds["test"]
    spec = ds["meta"]["features"]
    assert (spec["text"]["name"], spec["text"]["dim"]) == ("glove", 50)
    assert (spec["audio"]["dim"], spec["visual"]["dim"]) == (0, 0)
    first = ds["ID"][0]
    assert ds["speakers"][first][:2] == ["ann", "bob"]
    assert ds["present"][first].tolist()[0] == [True, False, False]
    assert ds["meta"]["timings"][first][0] == [0.0, 1.5]
    labels = ds["labels"][first]
    assert set(np.unique(labels[:, 0])) <= {-2.0, 2.0} and np.isnan(labels[:, 2]).all()  # sadness never given: unknown
    # the same sentence gives the same features; different sentences differ
    sents = ds["sentence_in_text"][first]
    feats = ds["text_feat"][first]
    for i, j in [(i, j) for i in range(len(sents)) for j in range(len(sents))]:
        assert np.array_equal(feats[i], feats[j]) == (sents[i] == sents[j])


def test_rows_of_a_video_need_not_be_adjacent_and_empty_speakers_carry_over(tmp_path):
    from pipeline.importers.text import read_text_csv

    path = tmp_path / "x.csv"
    path.write_text("video,speaker,text\na,X,one\nb,Y,two\na,,three\nb,Z,four\n", encoding="utf-8")
    corpus = read_text_csv(path)
    assert [u["text"] for u in corpus.utterances["a"]] == ["one", "three"]
    assert [u["speaker"] for u in corpus.utterances["a"]] == ["X", "X"]
    assert not corpus.has_split


BAD_ROWS = [
    ("video,speaker,text\nd1,A,\n", "line 2: video 'd1' has a row with no text"),
    ("video,speaker,text,sentiment\nd1,A,hi,3.5\n", "line 2: sentiment 3.5 is outside -3..3"),
    ("video,speaker,text,anger\nd1,A,hi,-1\n", "line 2: anger -1 is negative"),
    ("video,speaker,text,sentiment\nd1,A,hi,very\n", "line 2: sentiment = 'very' is not a number"),
    ("video,speaker,text,sentiment\nd1,A,hi,inf\n", "line 2: sentiment = 'inf' is not a finite number"),
    ("video,speaker,text,split\nd1,A,hi,train\nd2,B,yo,test\nd1,A,bye,test\n", "line 4: video 'd1' is in test here but in train"),
    ("video,speaker,text,split\nd1,A,hi,validation\n", "line 2: split 'validation'"),
    ("video,speaker,text,start,end\nd1,A,hi,2,1\n", "line 2: start '2' and end '1'"),
    ("video,speaker,text,start\nd1,A,hi,2\n", "give both 'start' and 'end' columns"),
    ("video,text\nd1,hi\n", "the header lacks speaker"),
    ("video,speaker,text\n", "no utterances"),
    ("video,speaker,text\n,A,hi\n", "line 2: no video id"),
]


@pytest.mark.parametrize("content,message", BAD_ROWS, ids=[m.split(":")[0] + " " + m.split(":")[-1][:20] for _, m in BAD_ROWS])
def test_bad_rows_are_one_line_naming_file_and_line_and_nothing_is_written(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "out" / "ds.pkl"
    assert cli.main(["import", "text", str(path), "-o", str(out), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}") and message in err, err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_output_over_the_input_and_non_utf8_are_refused(tmp_path, capsys):
    path = write_corpus(tmp_path / "c.csv", n_videos=3)
    assert cli.main(["import", "text", str(path), "-o", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: -o {path} is one of this command's inputs; write to a new file"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("video,speaker,text\nd1,A,café\n".encode("latin-1"))
    assert cli.main(["import", "text", str(latin), "-o", str(tmp_path / "l.pkl")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_train_on_text_data_and_evaluate_on_the_csv(tmp_path, capsys):
    """A text-only dataset trains Multilogue-Net (audio and visual absent), and evaluate computes the CSV's
    features with the checkpoint's extractor: the same figures as on the imported dataset."""
    csv_path = write_corpus(tmp_path / "talks.csv", n_videos=40)
    data = tmp_path / "talks.pkl"
    assert cli.main(["import", "text", str(csv_path), "-o", str(data), "--cache-dir", str(tmp_path / "cache")]) == 0
    run = tmp_path / "runs" / "regression"
    assert cli.main(["train", "--task", "regression", "--data", str(data), "--out", str(run), "--epochs", "8", "--batch-size", "4",
                     "--lr", "3e-3"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "runs"), "--data", str(data), "--json"]) == 0
    on_pickle = json.loads(capsys.readouterr().out)
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "runs"), "--data", str(csv_path), "--json"]) == 0
    on_csv = json.loads(capsys.readouterr().out)
    assert set(on_csv) == {"regression"}
    for k, v in on_pickle["regression"].items():
        assert on_csv["regression"][k] == pytest.approx(v, rel=1e-5), k
    assert on_csv["regression"]["accuracy_binary"] > 80  # the words carry the sentiment
    # a CSV without labels for the task is an error, not a table of NaN
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("video,speaker,text\nx,A,I love it\n", encoding="utf-8")
    assert cli.main(["evaluate", "--checkpoint", str(run), "--data", str(unlabelled)]) == 2
    assert "has a 'sentiment' label" in capsys.readouterr().err
