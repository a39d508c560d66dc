"""Transcripts next to a clip: find them, parse them into utterance segments, and place them in time.

A clip `talk.mp4` may have, beside it with the same stem, one of (searched in this order):

    talk.csv   header row; columns start, end, text (required), speaker, and optional label columns
               sentiment, happiness, sadness, anger, surprise, disgust, fear. Times are seconds (`12.5`)
               or clock times (`00:00:12.500`). An empty label cell means unknown.
    talk.srt   SubRip: each cue is one utterance.
    talk.vtt   WebVTT: each cue is one utterance; `<v Name>` names the speaker.
    talk.txt   one utterance per line. Lines of the form `start<TAB>end<TAB>text` (Audacity labels)
               are timed; plain lines are not: one plain line spans the whole clip, several are aligned
               to the audio with pocketsphinx (extractors.asr_pocketsphinx).

In .srt, .vtt and .txt a `NAME:` prefix (at most three words, up to 32 characters) names the speaker.
A cue or line without a name keeps the previous speaker ("A" before any name is seen). A transcript that names
no speaker at all (no prefix, no `<v>`, an empty or missing CSV speaker column) is diarized by `--diarize auto`
(extractors.diarize); one that names speakers keeps them. Markup
(`<i>`, `<font ...>`, `<c.x>`, `{\\an8}`, inline timestamps) is removed and HTML entities are decoded.
Cues whose text is empty after that are dropped. Overlapping cues are kept as separate utterances,
ordered by start time.

Files must be UTF-8 (a byte-order mark and CRLF/CR line ends are fine); anything else raises
ExtractionError naming the file and how to convert it.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data.dataset import LABEL_COLUMNS, label_problem
from core.errors import ExtractionError
from core.fileio import input_file
from extractors.base import Segment

log = logging.getLogger(__name__)

TRANSCRIPT_SUFFIXES = (".csv", ".srt", ".vtt", ".txt")
DEFAULT_SPEAKER = "A"
# Subtitle tools round cue ends; a cue ending this little past the clip is clipped, not refused.
END_TOLERANCE_S = 0.25

_CLOCK = r"(?:\d+:)?\d{1,2}:\d{1,2}(?:[.,]\d{1,3})?"
_TIMING = re.compile(rf"^\s*({_CLOCK})\s*-->\s*({_CLOCK})(?:\s+.*)?$")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_SPEAKER = re.compile(r"^\s*((?:[^\s:]+\s?){1,3}?)\s*:(?:\s+|$)(.*)$")
_AUDACITY = re.compile(r"^\s*(\d+(?:\.\d*)?)\t(\d+(?:\.\d*)?)\t(.*)$")


@dataclass
class Transcript:
    """A parsed transcript.

    segments: utterances in time order; when `timed` is False their start/end are NaN and must be
    placed on the audio (see `place_segments`). fmt: "csv" | "srt" | "vtt" | "txt".
    """

    path: Path
    fmt: str
    segments: list[Segment]
    timed: bool
    has_labels: bool = False
    notes: list[str] = field(default_factory=list)
    named_speakers: bool = False  # some cue, line or row names its speaker (then no diarization relabels it)


def find_transcript(clip: str | Path) -> Path | None:
    """The transcript beside `clip` (same stem), or None. The first of .csv, .srt, .vtt, .txt wins. ExtractionError
    when the one there is not a regular file (a named pipe, a broken symbolic link)."""
    clip = Path(clip)
    for suffix in TRANSCRIPT_SUFFIXES:
        for candidate in (clip.with_suffix(suffix), clip.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
            if candidate.is_symlink() or (candidate.exists() and not candidate.is_dir()):
                # a FIFO would block the read, a broken link would be taken for "no transcript": say so
                input_file(candidate, "transcript", error=ExtractionError)
    return None


def read_text(path: str | Path) -> str:
    """The file as text: strict UTF-8, BOM removed, line ends normalised to `\\n`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExtractionError(f"{path}: cannot read transcript ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractionError(
            f"{path}: transcript is not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed && mv fixed {path.name}`"
        ) from e
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_clock(value: str, source: Any = "transcript") -> float:
    """Seconds from `12.5`, `01:02.5`, `00:01:02,500` or `1:02:03.25`."""
    value = value.strip()
    try:
        parts = value.replace(",", ".").split(":")
        if len(parts) > 3 or any(p == "" for p in parts):
            raise ValueError(value)
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError as e:
        raise ExtractionError(f"{source}: {value!r} is not a time; use seconds (12.5) or HH:MM:SS.mmm") from e
    if not math.isfinite(seconds) or seconds < 0:
        raise ExtractionError(f"{source}: {value!r} is not a time; use seconds (12.5) or HH:MM:SS.mmm")
    return seconds


def split_speaker(line: str) -> tuple[str | None, str]:
    """(`NAME`, rest) when `line` starts with a `NAME:` prefix of 1-3 words, else (None, line)."""
    m = _SPEAKER.match(line)
    if not m:
        return None, line.strip()
    name = m.group(1).strip()
    # "10:30" or "http://..." are not speakers
    if len(name) > 32 or not any(ch.isalpha() for ch in name) or m.group(2).startswith("//"):
        return None, line.strip()
    return name, m.group(2).strip()


def _clean(text: str) -> str:
    text = _TAG.sub("", text)
    text = html.unescape(text)
    return re.sub(r"\s+", " ", text).strip()


def _cue_text(lines: list[str]) -> tuple[str | None, str]:
    """Speaker (from `<v Name>` or a `NAME:` prefix) and cleaned text of a cue's text lines."""
    joined = " ".join(line.strip() for line in lines if line.strip())
    speaker = None
    voice = _VOICE.search(joined)
    if voice:
        speaker = voice.group(1).strip() or None
    text = _clean(joined)
    text = re.sub(r"^-\s+", "", text)  # dialogue dash at the start of a cue
    if speaker is None:
        speaker, text = split_speaker(text)
    return speaker, text


def _sort(segments: list[Segment]) -> list[Segment]:
    ordered = sorted(segments, key=lambda s: (s.start, s.end))
    for prev, cur in zip(ordered, ordered[1:]):
        if cur.start < prev.end:
            log.debug("overlapping utterances kept apart: %.2f-%.2f and %.2f-%.2f", prev.start, prev.end, cur.start, cur.end)
    return ordered


def parse_cues(text: str, source: Any = "transcript", fmt: str = "srt") -> tuple[list[Segment], bool]:
    """Segments of SubRip or WebVTT text (blocks separated by blank lines, one timing line each), and whether any
    cue names its speaker."""
    blocks = re.split(r"\n\s*\n", text.strip("\n"))
    segments: list[Segment] = []
    speaker = DEFAULT_SPEAKER
    named = False
    for n, block in enumerate(blocks, 1):
        lines = [line for line in block.split("\n")]
        head = lines[0].strip()
        if fmt == "vtt" and (head.startswith("WEBVTT") or head.split(" ")[0] in ("NOTE", "STYLE", "REGION")):
            continue
        timing_at = next((i for i, line in enumerate(lines[:3]) if "-->" in line), None)
        if timing_at is None:
            if block.strip():
                raise ExtractionError(f"{source}: block {n} ({head[:40]!r}) has no 'start --> end' timing line")
            continue
        m = _TIMING.match(lines[timing_at])
        if not m:
            raise ExtractionError(f"{source}: block {n}: cannot read timing {lines[timing_at].strip()!r}; expected HH:MM:SS,mmm --> HH:MM:SS,mmm")
        start, end = parse_clock(m.group(1), source), parse_clock(m.group(2), source)
        if end <= start:
            raise ExtractionError(f"{source}: cue {n} ends ({m.group(2)}) before or when it starts ({m.group(1)}); fix its timing")
        name, words = _cue_text(lines[timing_at + 1 :])
        if not words:
            log.debug("%s: cue %d has no text; skipped", source, n)
            continue
        speaker = name or speaker
        named = named or name is not None
        segments.append(Segment(start, end, speaker, words))
    return _sort(segments), named


def parse_number(cell: str, what: str, where: Any, error: type[Exception] = ExtractionError) -> float | None:
    """A numeric CSV cell: None when empty or a NaN marker ("nan", "na", "n/a", "none", "?"); raises `error`
    naming `where` and the column when it is not a number or is infinite (no label or time is; a spreadsheet's
    overflow is a mistake to fix, not an unknown)."""
    cell = cell.strip()
    if cell == "" or cell.lower() in ("nan", "na", "n/a", "none", "?"):
        return None
    try:
        value = float(cell)
    except ValueError as e:
        raise error(f"{where}: {what} = {cell!r} is not a number; leave it empty if unknown") from e
    if not math.isfinite(value):
        raise error(f"{where}: {what} = {cell!r} is not a finite number; leave it empty if unknown")
    return value


def _label_value(cell: str, column: str, row: int, source: Any) -> float | None:
    value = parse_number(cell, column, f"{source}: row {row}")
    if value is None:
        return None
    one = np.full((1, len(LABEL_COLUMNS)), np.nan, dtype=np.float32)
    one[0, LABEL_COLUMNS.index(column)] = value
    problem = label_problem(one)
    if problem:
        raise ExtractionError(f"{source}: row {row}: {column} = {value}: {problem}; fix the label")
    return value


def parse_csv(text: str, source: Any = "transcript") -> tuple[list[Segment], bool, bool]:
    """Segments of a transcript CSV, whether it has any label column, and whether any row names its speaker."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ExtractionError(f"{source}: empty CSV; expected a header row start,end,speaker,text")
    columns = [h.strip().lower() for h in header]
    missing = [c for c in ("start", "end", "text") if c not in columns]
    if missing:
        raise ExtractionError(f"{source}: CSV lacks column(s) {', '.join(missing)}; header must include start,end,speaker,text (got {','.join(columns)})")
    at = {c: i for i, c in enumerate(columns)}
    label_cols = [c for c in LABEL_COLUMNS if c in at]
    segments = []
    named = False
    for row_no, row in enumerate(reader, 2):
        if not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(columns) - len(row))
        start = parse_clock(row[at["start"]], f"{source}: row {row_no}")
        end = parse_clock(row[at["end"]], f"{source}: row {row_no}")
        if end <= start:
            raise ExtractionError(f"{source}: row {row_no}: end {end} is not after start {start}")
        speaker = row[at["speaker"]].strip() if "speaker" in at else ""
        named = named or bool(speaker)
        labels = {}
        for c in label_cols:
            value = _label_value(row[at[c]], c, row_no, source)
            if value is not None:
                labels[c] = value
        segments.append(Segment(start, end, speaker or DEFAULT_SPEAKER, _clean(row[at["text"]]), labels))
    return _sort(segments), bool(label_cols), named


def parse_txt(text: str, source: Any = "transcript") -> tuple[list[Segment], bool, bool]:
    """Segments of a .txt transcript, whether they are timed (all lines `start<TAB>end<TAB>text`), and whether any
    line names its speaker."""
    lines = [line for line in text.split("\n") if line.strip()]
    timed = [_AUDACITY.match(line) for line in lines]
    if any(timed) and not all(timed):
        first = next(i for i, m in enumerate(timed) if not m)
        raise ExtractionError(f"{source}: some lines are timed (start<TAB>end<TAB>text) and some are not (e.g. {lines[first][:40]!r}); time all lines or none")
    segments = []
    speaker = DEFAULT_SPEAKER
    named = False
    for line, m in zip(lines, timed):
        start, end = (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)
        if m and end <= start:
            raise ExtractionError(f"{source}: line {line[:40]!r}: end is not after start")
        name, words = split_speaker(_clean(m.group(3) if m else line))
        speaker = name or speaker
        named = named or name is not None
        if words:
            segments.append(Segment(start, end, speaker, words))
    is_timed = bool(lines) and all(timed)
    return (_sort(segments) if is_timed else segments), is_timed, named


def read_transcript(path: str | Path) -> Transcript:
    """Parse a .csv/.srt/.vtt/.txt transcript. Raises ExtractionError naming the file on any problem."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    text = read_text(path)
    has_labels = False
    if fmt == "csv":
        segments, has_labels, named = parse_csv(text, path)
        timed = True
    elif fmt in ("srt", "vtt"):
        if fmt == "vtt" and not text.lstrip().startswith("WEBVTT"):
            raise ExtractionError(f"{path}: a WebVTT file must start with 'WEBVTT'")
        (segments, named), timed = parse_cues(text, path, fmt), True
    elif fmt == "txt":
        segments, timed, named = parse_txt(text, path)
    else:
        raise ExtractionError(f"{path}: unknown transcript type; use one of {', '.join(TRANSCRIPT_SUFFIXES)}")
    if not segments:
        raise ExtractionError(f"{path}: transcript has no utterances; delete it to transcribe the clip automatically")
    return Transcript(path, fmt, segments, timed, has_labels, named_speakers=named)


def check_timings(segments: list[Segment], duration: float, source: Any) -> list[Segment]:
    """Refuse segments that start or end past the clip's end (clipping ends within END_TOLERANCE_S)."""
    for i, seg in enumerate(segments):
        if seg.start >= duration or seg.end > duration + END_TOLERANCE_S:
            raise ExtractionError(
                f"{source}: utterance {i + 1} ({seg.start:.2f}-{seg.end:.2f} s) runs past the clip's end ({duration:.2f} s); "
                "fix the transcript's timings or use the matching clip"
            )
        seg.end = min(seg.end, duration)
    return segments


def place_segments(clip: str | Path, media, transcript_path: str | Path | None = None, *, asr: dict | None = None,
                   threads: int = 0) -> tuple[list[Segment], dict]:
    """The utterance segments of a decoded clip, and how they were obtained.

    Timed transcripts are checked against `media.duration`; one untimed line spans the whole clip;
    several untimed lines are force-aligned with pocketsphinx; no transcript means automatic
    transcription by the transcriber the spec `asr` describes ({"name", "params"}; None: the default,
    Whisper tiny.en) with `threads` CPU threads (0: all cores). When it finds no speech the clip is one
    utterance with empty text. Returns (segments, info) where info = {"transcript": name or None,
    "format", "timing": "transcript" | "whole_clip" | "aligned" | "vad" | "proportional" | "asr",
    "automatic_text": bool, "asr": the transcriber's label (e.g. "whisper tiny.en") or None, "named_speakers": whether
    the transcript names speakers (then a diarizer leaves them alone)}.
    """
    clip = Path(clip)
    path = Path(transcript_path) if transcript_path else find_transcript(clip)
    if path is None:
        from extractors.asr import transcriber_from_spec

        transcriber = transcriber_from_spec(asr, threads=threads)
        # the run summary (extract) or the result (predict) says which clips were transcribed; one line per clip is noise
        log.debug("%s: no transcript (.csv/.srt/.vtt/.txt) beside it; transcribing with %s (automatic text)", clip.name, transcriber.label)
        segments = transcriber.transcribe(media.audio, media.sample_rate)
        if not segments:
            segments = [Segment(0.0, media.duration, DEFAULT_SPEAKER, "")]
        return segments, {"transcript": None, "format": None, "timing": "asr", "automatic_text": True, "asr": transcriber.label,
                          "named_speakers": False}
    tr = read_transcript(path)
    info = {"transcript": path.name, "format": tr.fmt, "timing": "transcript", "automatic_text": False, "asr": None,
            "named_speakers": tr.named_speakers}
    if tr.timed:
        return check_timings(tr.segments, media.duration, path), info
    if len(tr.segments) == 1:
        seg = tr.segments[0]
        seg.start, seg.end = 0.0, media.duration
        info["timing"] = "whole_clip"
        return tr.segments, info
    from extractors.asr_pocketsphinx import align_lines

    spans, method = align_lines(media.audio, media.sample_rate, [s.text for s in tr.segments])
    for seg, (start, end) in zip(tr.segments, spans):
        seg.start, seg.end = start, end
    info["timing"] = method
    return tr.segments, info
