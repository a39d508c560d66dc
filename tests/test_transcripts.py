"""Transcript parsing (.csv/.srt/.vtt/.txt), placement in time, labels.csv and splits, and pocketsphinx alignment
(Whisper transcription: tests/test_asr.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.errors import ExtractionError, UserError
from extractors.base import Media, Segment
from extractors.transcripts import find_transcript, place_segments, read_transcript, split_speaker
from data.splits import split_videos
from pipeline.extraction.labels import label_matrix, read_labels
from demo.clipgen import speak, tools_available

SRT = """1
00:00:00,500 --> 00:00:02,000
JOHN: Hello <i>there</i>

2
00:00:01,500 --> 00:00:03,250
<font color="red">MARÍA JOSÉ:</font> overlapping
second line

3
00:00:04,000 --> 00:00:05,000


4
00:00:05,000 --> 00:00:06,000
continued by the same speaker
"""

VTT = """WEBVTT - some title

NOTE a comment
spanning lines

STYLE
::cue { color: red }

intro
00:01.000 --> 00:02.500 align:start position:10%
<v.loud Zoë Ånström>Hi &amp; <c.yellow>welcome</c> <00:01.500>all

00:00:03.000 --> 00:00:04.000
<v Bob>- Thanks
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def media(duration: float = 10.0) -> Media:
    return Media(path="clip.mp4", audio=np.zeros(int(duration * 16000), np.float32), sample_rate=16000, duration=duration)


def test_srt_overlap_tags_speakers_empty_cue(tmp_path):
    tr = read_transcript(write(tmp_path, "a.srt", SRT))
    assert tr.timed and tr.fmt == "srt"
    assert [(s.start, s.end, s.speaker, s.text) for s in tr.segments] == [
        (0.5, 2.0, "JOHN", "Hello there"),
        (1.5, 3.25, "MARÍA JOSÉ", "overlapping second line"),  # overlapping cue kept as its own utterance
        (5.0, 6.0, "MARÍA JOSÉ", "continued by the same speaker"),  # the empty cue 3 is dropped
    ]


@pytest.mark.parametrize("transform", [lambda t: t, lambda t: "\ufeff" + t.replace("\n", "\r\n"), lambda t: t.replace("\n", "\r")])
def test_srt_bom_crlf_cr(tmp_path, transform):
    tr = read_transcript(write(tmp_path, "a.srt", transform(SRT)))
    assert [s.text for s in tr.segments] == ["Hello there", "overlapping second line", "continued by the same speaker"]


def test_vtt_voice_tags_header_blocks(tmp_path):
    tr = read_transcript(write(tmp_path, "a.vtt", "\ufeff" + VTT.replace("\n", "\r\n")))
    assert [(s.start, s.end, s.speaker, s.text) for s in tr.segments] == [
        (1.0, 2.5, "Zoë Ånström", "Hi & welcome all"),
        (3.0, 4.0, "Bob", "Thanks"),
    ]


def test_vtt_needs_header(tmp_path):
    with pytest.raises(ExtractionError, match="WEBVTT"):
        read_transcript(write(tmp_path, "a.vtt", "00:01.000 --> 00:02.000\nhi\n"))


def test_bad_timing_and_reversed_cue(tmp_path):
    with pytest.raises(ExtractionError, match=r"a\.srt: block 1"):
        read_transcript(write(tmp_path, "a.srt", "1\n00:00:01 --> later\nhi\n"))
    with pytest.raises(ExtractionError, match="before or when it starts"):
        read_transcript(write(tmp_path, "b.srt", "1\n00:00:03,000 --> 00:00:01,000\nhi\n"))


def test_csv_labels_speakers_clock_times(tmp_path):
    text = (
        "\ufeffStart,End,Speaker,Text,Sentiment,Happiness,fear,notes\r\n"
        "0,1.5,Ana,\"hello, world\",1.5,2,,x\r\n"
        "\r\n"
        "00:00:01.000,00:00:02.500,Łukasz,overlap,,,0.5,\r\n"
        "3,4,,no speaker,-3,0,0\r\n"
    )
    tr = read_transcript(write(tmp_path, "a.csv", text))
    assert tr.has_labels
    assert [(s.start, s.end, s.speaker, s.text) for s in tr.segments] == [
        (0.0, 1.5, "Ana", "hello, world"), (1.0, 2.5, "Łukasz", "overlap"), (3.0, 4.0, "A", "no speaker")]
    assert tr.segments[0].labels == {"sentiment": 1.5, "happiness": 2.0}
    assert tr.segments[1].labels == {"fear": 0.5}
    labels = label_matrix(tr.segments)
    assert labels.shape == (3, 7) and labels.dtype == np.float32
    assert labels[0, 0] == 1.5 and np.isnan(labels[0, 2]) and labels[2, 0] == -3


@pytest.mark.parametrize("text, match", [
    ("start,end,speaker\n0,1,A\n", "lacks column"),
    ("start,end,text,sentiment\n0,1,hi,4\n", "outside"),
    ("start,end,text,anger\n0,1,hi,-1\n", "negative"),
    ("start,end,text,sentiment\n0,1,hi,good\n", "not a number"),
    ("start,end,text,sentiment\n0,1,hi,inf\n", "row 2: sentiment = 'inf' is not a finite number; leave it empty if unknown"),
    ("start,end,text,fear\n0,1,hi,-Infinity\n", "fear = '-Infinity' is not a finite number"),
    ("start,end,text\nzero,1,hi\n", "not a time"),
    ("start,end,text\n2,1,hi\n", "not after start"),
])
def test_csv_errors(tmp_path, text, match):
    with pytest.raises(ExtractionError, match=match):
        read_transcript(write(tmp_path, "a.csv", text))


def test_txt_lines_speakers_empty_lines(tmp_path):
    tr = read_transcript(write(tmp_path, "a.txt", "\ufeffJOHN: first line\r\n\r\n   \r\nsecond line\r\nÉLODIE: troisième\r\n"))
    assert not tr.timed
    assert [(s.speaker, s.text) for s in tr.segments] == [("JOHN", "first line"), ("JOHN", "second line"), ("ÉLODIE", "troisième")]
    assert all(math.isnan(s.start) for s in tr.segments)


def test_txt_audacity_labels_are_timed(tmp_path):
    tr = read_transcript(write(tmp_path, "a.txt", "1.0\t2.0\tB: one\n0.5\t0.9\ttwo\n"))
    assert tr.timed and [(s.start, s.text) for s in tr.segments] == [(0.5, "two"), (1.0, "one")]
    with pytest.raises(ExtractionError, match="some lines are timed"):
        read_transcript(write(tmp_path, "b.txt", "1.0\t2.0\tone\nplain\n"))


def test_non_utf8_names_the_file(tmp_path):
    p = write(tmp_path, "latin.srt", "1\n00:00:00,000 --> 00:00:01,000\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ExtractionError, match=r"latin\.srt: transcript is not UTF-8 \(byte 0xe9.*iconv"):
        read_transcript(p)


def test_empty_transcript_is_an_error(tmp_path):
    with pytest.raises(ExtractionError, match="no utterances"):
        read_transcript(write(tmp_path, "a.txt", "\n  \n"))


def test_speaker_prefix_rules():
    assert split_speaker("Dr. Smith: hi") == ("Dr. Smith", "hi")
    assert split_speaker("at 10:30 we met") == (None, "at 10:30 we met")
    assert split_speaker("see http://x.org") == (None, "see http://x.org")
    assert split_speaker("one two three four: five") == (None, "one two three four: five")


def test_find_transcript_prefers_csv(tmp_path):
    clip = write(tmp_path, "talk.mp4", b"")
    assert find_transcript(clip) is None
    write(tmp_path, "talk.txt", "hi")
    write(tmp_path, "talk.srt", "1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    assert find_transcript(clip).name == "talk.srt"
    write(tmp_path, "talk.csv", "start,end,text\n0,1,hi\n")
    assert find_transcript(clip).name == "talk.csv"


def test_place_timed_past_end_fails_and_small_overshoot_is_clipped(tmp_path):
    clip = write(tmp_path, "c.mp4", b"")
    write(tmp_path, "c.srt", "1\n00:00:01,000 --> 00:00:10,100\nhi\n")
    segs, info = place_segments(clip, media(10.0))
    assert segs[0].end == 10.0 and info["timing"] == "transcript" and not info["automatic_text"]
    write(tmp_path, "c.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:09,000 --> 00:00:12,000\nlate\n")
    with pytest.raises(ExtractionError, match=r"c\.srt: utterance 2 .* past the clip's end \(10\.00 s\)"):
        place_segments(clip, media(10.0))


def test_place_one_line_spans_clip(tmp_path):
    clip = write(tmp_path, "c.wav", b"")
    write(tmp_path, "c.txt", "BOB: the only line\n")
    segs, info = place_segments(clip, media(3.0))
    assert [(s.start, s.end, s.speaker) for s in segs] == [(0.0, 3.0, "BOB")] and info["timing"] == "whole_clip"


def test_place_several_lines_in_silence_falls_back_to_proportional(tmp_path):
    clip = write(tmp_path, "c.wav", b"")
    write(tmp_path, "c.txt", "short\na much much longer line\n")
    segs, info = place_segments(clip, media(3.0))
    assert info["timing"] == "proportional"
    assert segs[0].start == 0 and segs[0].end == pytest.approx(segs[1].start) and segs[1].end == pytest.approx(3.0)
    assert segs[1].end - segs[1].start > segs[0].end - segs[0].start


def test_labels_csv_index_span_video_rows_and_splits(tmp_path):
    write(tmp_path, "labels.csv", "video,utterance,start,end,sentiment,anger,split\n"
          "s1/a.mp4,1,,,2,,test\n"
          "s1/a,,1.0,2.1,-1,1,\n"
          "b,,,,0.5,,train\n"
          "gone,0,,,1,,\n")
    table = read_labels(tmp_path, {"s1/a": "s1/a", "s1/a.mp4": "s1/a", "b": "b"})
    assert table.splits == {"s1/a": "test", "b": "train"}
    segs = [Segment(0, 1), Segment(1, 2), Segment(2, 3)]
    lab = label_matrix(segs, table.rows["s1/a"])
    assert lab[1, 0] == -1 and lab[1, 3] == 1 and np.isnan(lab[0]).all() and np.isnan(lab[2]).all()
    assert (label_matrix(segs, table.rows["b"])[:, 0] == 0.5).all()  # no index and no span: every utterance
    with pytest.raises(ExtractionError, match="utterance 5 but the clip has 3"):
        write(tmp_path, "labels.csv", "video,utterance,sentiment\nb,5,1\n")
        label_matrix(segs, read_labels(tmp_path, {"b": "b"}).rows["b"])
    with pytest.raises(ExtractionError, match="no utterance matches"):
        write(tmp_path, "labels.csv", "video,start,end,sentiment\nb,7,8,1\n")
        label_matrix(segs, read_labels(tmp_path, {"b": "b"}).rows["b"])


@pytest.mark.parametrize("text, match", [
    ("clip,sentiment\nb,1\n", "needs a 'video' column"),
    ("video,sentiment\nb,9\n", "outside"),
    ("video,sentiment\nb,inf\n", "sentiment = 'inf' is not a finite number; leave it empty if unknown"),
    ("video,split\nb,valid\n", "must be 'train' or 'test'"),
    ("video,start,sentiment\nb,1,1\n", "both 'start' and 'end'"),
])
def test_labels_csv_errors(tmp_path, text, match):
    write(tmp_path, "labels.csv", text)
    with pytest.raises(UserError, match=match):
        read_labels(tmp_path, {"b": "b"})


def test_split_videos_is_stable_and_respects_fixed():
    vids = [f"v{i}" for i in range(10)]
    train, test = split_videos(vids, 0.2, seed=0)
    assert 1 <= len(test) <= 5 and sorted(train + test) == sorted(vids)
    assert split_videos(vids, 0.2, seed=0) == (train, test)
    assert split_videos(vids, 0.2, seed=1) != (train, test)
    train2, test2 = split_videos(vids, 0.2, seed=0, fixed={"v0": "test", "v1": "train"})
    assert "v0" in test2 and "v1" in train2
    assert split_videos(["x", "y"], 0.2, seed=0)[1] != []  # at least one test video
    assert split_videos(["x"], 0.2, seed=0) == (["x"], [])


@pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")
def test_asr_result_does_not_depend_on_previous_clips():
    """pocketsphinx adapts its front end from one utterance to the next; each clip must start afresh
    (the bug: a clip's automatic text changed with the clips a worker had decoded before it)."""
    from extractors.asr_pocketsphinx import align_lines, transcribe

    a, b = speak("the weather is lovely today"), speak("this is terrible news and I hate it")
    first = transcribe(a)
    transcribe(b)
    assert transcribe(a) == first
    two = np.concatenate([a, np.zeros(8000, np.float32), b]) + np.random.default_rng(1).normal(0, 1e-4, len(a) + len(b) + 8000).astype(np.float32)
    spans = align_lines(two, 16000, ["the weather is lovely today", "this is terrible news and I hate it"])
    transcribe(b)
    assert align_lines(two, 16000, ["the weather is lovely today", "this is terrible news and I hate it"]) == spans
    assert spans[1] == "aligned" and spans[0][0][1] <= len(a) / 16000 + 0.2 <= spans[0][1][0] + 0.5


def test_adding_videos_never_moves_another_across_the_split():
    """The README's promise: a video stays on its side when clips are added (200 single additions)."""
    vids = [f"clip{i:03d}" for i in range(50)]
    train, test = split_videos(vids, 0.2, seed=0)
    for k in range(200):
        more = vids + [f"new{k}"]
        train2, test2 = split_videos(more, 0.2, seed=0)
        assert set(test) <= set(test2) and set(train) <= set(train2), k
    assert 3 <= len(test) <= 17  # about a fifth


def test_validation_split_is_a_function_of_the_video_and_seed():
    from pipeline.training.train import split_validation

    vids = [f"v{i}" for i in range(300)]
    _, valid = split_validation(vids, 0.1, seed=4)
    _, valid_merged = split_validation(vids + [f"other/{i}" for i in range(500)], 0.1, seed=4)
    assert set(valid) == {v for v in valid_merged if v.startswith("v")}
    _, test = split_videos(vids, 0.1, seed=4)
    assert len(set(valid) & set(test)) < 10  # validation and test draws are independent
