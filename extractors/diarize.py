"""Speaker diarization: who speaks when, for utterances whose transcript names no speaker.

    diarizer = diarizer_from_spec(diarize_spec("auto"))     # None for --diarize off
    segments, info = diarizer.diarize(media.audio, segments)  # speakers "S1".."Sn"; info {"speakers", "windows", "split"}

The utterances come from the transcriber (or a transcript without speaker names): only their time spans are
listened to, so silence, music the transcriber skipped, and anything outside an utterance are never labelled.
1. Windows of `window` s every `hop` s inside each utterance (one window of at least `min_window` s, centred, for a
   shorter one), each levelled to -30 dBFS and embedded by the GE2E encoder (extractors.speaker_encoder).
2. The window embeddings are clustered by spectral clustering on their cosine affinity, the number of speakers
   found by the normalised maximum eigengap (at most MAX_SPEAKERS), or exactly `speakers` when that is given.
   Without a given count, two clusters whose mean cross-similarity is at least `merge` times their mean inner
   similarity become one (the eigengap over-splits a voice that varies, and short clips), and a cluster
   holding less than `min_speaker` s of windows joins its nearest (a cough, a laugh or two words of a shout are
   not a new person): both chosen on development conversations (bench/diarization.py), never on the scored ones.
   Windows then move to their nearest centroid (two passes).
3. In an utterance long enough for two turns, windows of `min_window` s every FINE_HOP s each take the speaker
   whose centroid they are nearest (a 1.6 s window is too coarse to place a change); every 0.1 s of an utterance
   takes the label of the nearest window centre; runs shorter than `min_turn` s join a neighbour. An utterance
   whose runs differ is split where the speaker changes: at word boundaries when the transcriber gave word times
   (the words go to the part their middle falls in), else its text is shared out in proportion to time. Labels
   are S1, S2, ... in order of first appearance.

`diarize_spec(mode, speakers)` is what datasets (meta["features"]["diarize"]) and checkpoints record:
{"name": "ge2e", "mode": "auto"|"on", "params": {...}} or {"name": "none", "mode": "off", "params": {}}.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from extractors.asr import package_version
from extractors.base import SAMPLE_RATE, Segment

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")
DEFAULT_MODE = "auto"
NAME = "ge2e"
SPEAKERS_LIMIT = 32  # the most --speakers accepts (a count given, not found)
SPEAKERS_HINT = f"give a number of speakers from 1 to {SPEAKERS_LIMIT}"  # the fix, for every message about it
GRID_S = 0.1
MAX_SPEAKERS = 8  # the most the eigengap may find
FINE_HOP = 0.2  # seconds between the fine windows that place a change of speaker
MAX_WINDOWS = 600  # a longer clip gets a longer hop, so clustering stays under a second
# Chosen on the development conversations of bench/diarization.py (RAVDESS actors 1-10, URDU speakers of its
# development half); the scored test conversations have other speakers.
DEFAULTS = {"window": 1.6, "hop": 0.4, "min_window": 0.8, "merge": 0.825, "min_speaker": 4.0, "min_turn": 0.7}


def speaker_count(value: Any) -> int:
    """A fixed speaker count as --speakers takes it: a whole number from 1 to SPEAKERS_LIMIT. ValueError otherwise."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= SPEAKERS_LIMIT:
        raise ValueError(f"--speakers {value}: {SPEAKERS_HINT}")
    return n


def diarize_spec(mode: str = DEFAULT_MODE, speakers: int | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorded spec of a diarization choice. mode: auto | on | off; speakers: a fixed count (None: found from
    the voices); params: recorded settings to reuse (None: the defaults). ValueError for a bad mode or count."""
    if mode not in MODES:
        raise ValueError(f"--diarize {mode}: choose one of {', '.join(MODES)}")
    if mode == "off":
        return {"name": "none", "mode": "off", "params": {}}
    if speakers is not None:
        speakers = speaker_count(speakers)
    settings = {**DEFAULTS, **{k: v for k, v in (params or {}).items() if k in DEFAULTS}}
    if speakers is None and params:
        speakers = params.get("speakers")
    diarizer = Diarizer(speakers=None if speakers is None else int(speakers), **settings)
    return {"name": NAME, "mode": mode, "params": diarizer.params}


def is_active(spec: dict | None) -> bool:
    """Whether a spec diarizes (the mode is auto or on)."""
    return bool(spec) and spec.get("name") == NAME and spec.get("mode") in ("auto", "on")


def diarizer_from_spec(spec: dict | None) -> "Diarizer | None":
    """The diarizer a spec describes, or None when it does not diarize."""
    if not is_active(spec):
        return None
    params = spec.get("params") or {}
    return Diarizer(speakers=params.get("speakers"), **{k: float(params[k]) for k in DEFAULTS if k in params})


class Diarizer:
    """GE2E window embeddings + spectral clustering (module docstring). Settings in seconds."""

    def __init__(self, *, speakers: int | None = None, window: float = DEFAULTS["window"], hop: float = DEFAULTS["hop"],
                 min_window: float = DEFAULTS["min_window"], merge: float = DEFAULTS["merge"],
                 min_speaker: float = DEFAULTS["min_speaker"], min_turn: float = DEFAULTS["min_turn"]) -> None:
        if not (0.2 <= min_window <= window and 0 < hop <= window and 0 < merge <= 1 and min_speaker >= 0 and min_turn >= 0):
            raise ValueError(f"diarizer settings out of range: window={window} hop={hop} min_window={min_window} "
                             f"merge={merge} min_speaker={min_speaker} min_turn={min_turn}")
        self.speakers = None if speakers is None else int(speakers)
        self.window, self.hop, self.min_window = float(window), float(hop), float(min_window)
        self.merge, self.min_speaker, self.min_turn = float(merge), float(min_speaker), float(min_turn)

    @property
    def params(self) -> dict[str, Any]:
        """What changes the labels (recorded in datasets and checkpoints)."""
        return {"encoder": "GE2E (resemblyzer pretrained.pt)", "weights": f"resemblyzer {package_version('resemblyzer')}",
                "clustering": "spectral, normalised maximum eigengap", "speakers": self.speakers, "max_speakers": MAX_SPEAKERS,
                "window": self.window, "hop": self.hop, "min_window": self.min_window, "max_windows": MAX_WINDOWS, "merge": self.merge, "min_speaker": self.min_speaker,
                "min_turn": self.min_turn}

    # ------------------------------------------------------------------ the steps
    def windows(self, segments: list[Segment], duration: float) -> list[tuple[int, float, float, bool]]:
        """(utterance index, start, end, fine) of the embedding windows, in seconds (module docstring, steps 1 and 3):
        `window`-long ones for clustering, then, in utterances long enough to hold two turns, `min_window`-long fine
        ones every FINE_HOP s that only say where the speaker changes."""
        out = []
        speech = sum(s.end - s.start for s in segments)
        hop = max(self.hop, speech / MAX_WINDOWS)  # a long clip: fewer windows, so clustering stays fast
        for i, s in enumerate(segments):
            length = s.end - s.start
            if length <= self.window:
                half = max(length, self.min_window) / 2
                mid = (s.start + s.end) / 2
                a, b = max(0.0, mid - half), min(duration, mid + half)
                out.append((i, a, max(b, a + 0.05), False))
                continue
            starts = list(np.arange(s.start, s.end - self.window + 1e-9, hop))
            if s.end - (starts[-1] + self.window) > 1e-6:
                starts.append(s.end - self.window)
            out += [(i, float(a), float(a) + self.window, False) for a in starts]
        for i, s in enumerate(segments):
            if s.end - s.start >= 2 * self.min_turn and s.end - s.start > self.min_window:
                out += [(i, float(a), float(a) + self.min_window, True) for a in np.arange(s.start, s.end - self.min_window + 1e-9, FINE_HOP)]
        return out

    def cluster(self, embeddings: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """(n, 256) unit embeddings and (n,) seconds each window stands for -> (n,) cluster ids 0..k-1 (step 2)."""
        n = len(embeddings)
        if n < 3 or self.speakers == 1:
            return np.zeros(n, dtype=int)
        count, laplacian = _eigengap(embeddings, MAX_SPEAKERS)
        if self.speakers is not None:
            count = min(self.speakers, n - 1)
        labels = np.zeros(n, dtype=int) if count == 1 else _spectral(laplacian, count)
        for _ in range(2):
            labels = self._merge(embeddings, seconds, labels)
            labels = np.argmax(embeddings @ _centroids(embeddings, labels).T, axis=1)
        return _compact(labels)

    def _merge(self, embeddings: np.ndarray, seconds: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Only when the count is found, not given: a cluster under `min_speaker` seconds joins its nearest, and the two
        clusters most alike merge while their mean cross-similarity is at least `merge` times their mean inner one
        (the eigengap over-splits a voice that varies, e.g. from calm to shouting, above all on short clips)."""
        labels = _compact(labels)
        similarity = embeddings @ embeddings.T
        while self.speakers is None and labels.max() > 0:
            k = labels.max() + 1
            members = [labels == c for c in range(k)]
            inner = np.array([_mean_off_diagonal(similarity[np.ix_(m, m)]) for m in members])
            ratio = np.full((k, k), -np.inf)
            for a in range(k):
                for b in range(a + 1, k):
                    ratio[a, b] = ratio[b, a] = similarity[np.ix_(members[a], members[b])].mean() / (0.5 * (inner[a] + inner[b]))
            totals = np.bincount(labels, weights=seconds)
            small = int(np.argmin(totals))
            if totals[small] < self.min_speaker:
                a, b = small, int(np.argmax(ratio[small]))
            elif ratio.max() >= self.merge:
                a, b = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            else:
                break
            labels = _compact(np.where(labels == a, b, labels))
        return labels

    def diarize(self, audio: np.ndarray, segments: list[Segment], sample_rate: int = SAMPLE_RATE) -> tuple[list[Segment], dict]:
        """Speaker labels S1..Sn for `segments` (time order) of the (n_samples,) float32 16 kHz `audio`; an utterance
        spanning a change of speaker is split there. Returns (new segments, {"speakers", "windows", "split"})."""
        windows, embeddings = self.embed(audio, segments, sample_rate)
        return self.assign(segments, windows, embeddings)

    def embed(self, audio: np.ndarray, segments: list[Segment], sample_rate: int = SAMPLE_RATE) -> tuple[list[tuple[int, float, float, bool]], np.ndarray]:
        """The windows of `segments` (see `windows`) and their (n_windows, 256) GE2E embeddings."""
        from extractors.speaker_encoder import HOP, load_encoder

        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"the diarizer needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        windows = self.windows(segments, len(audio) / sample_rate)
        if not windows:
            return [], np.zeros((0, 256), dtype=np.float32)
        encoder = load_encoder()
        mel = encoder.mel(audio)
        per_second = sample_rate / HOP
        spans = []
        for _, a, b, _ in windows:
            first = min(int(round(a * per_second)), len(mel) - 1)
            spans.append((first, max(first + 1, min(int(round(b * per_second)), len(mel)))))
        return windows, encoder.embed_frames(mel, spans, audio)

    def assign(self, segments: list[Segment], windows: list[tuple[int, float, float, bool]], embeddings: np.ndarray) -> tuple[list[Segment], dict]:
        """Cluster the window embeddings and label (and split) the segments: steps 2 and 3 of the module docstring."""
        if not segments:
            return [], {"speakers": 0, "windows": 0, "split": 0}
        coarse = np.array([not w[3] for w in windows])
        # each window stands for its share of its utterance (overlapping windows would otherwise count time twice)
        counts = np.bincount([w[0] for w in windows if not w[3]], minlength=len(segments))
        seconds = np.array([(segments[w[0]].end - segments[w[0]].start) / counts[w[0]] for w in windows if not w[3]])
        labels = np.zeros(len(windows), dtype=int)
        labels[coarse] = self.cluster(embeddings[coarse], seconds)
        if (~coarse).any():  # fine windows take the nearest speaker: they are too short to be clustered themselves
            labels[~coarse] = np.argmax(embeddings[~coarse] @ _centroids(embeddings[coarse], labels[coarse]).T, axis=1)
        fine_in = {w[0] for w in windows if w[3]}
        out: list[Segment] = []
        split = 0
        for i, seg in enumerate(segments):
            mine = [(0.5 * (a + b), int(labels[k])) for k, (j, a, b, f) in enumerate(windows) if j == i and f == (i in fine_in)]
            parts = self._turns(seg, mine)
            split += len(parts) > 1
            out += parts
        names: dict[str, str] = {}
        for s in out:
            s.speaker = names.setdefault(s.speaker, f"S{len(names) + 1}")
        return out, {"speakers": len(names), "windows": int(coarse.sum()), "split": split}

    def _turns(self, seg: Segment, centres: list[tuple[float, int]]) -> list[Segment]:
        """One utterance cut into runs of one speaker (step 3); cluster ids as provisional speaker names."""
        steps = max(1, int(round((seg.end - seg.start) / GRID_S)))
        grid = seg.start + (np.arange(steps) + 0.5) * (seg.end - seg.start) / steps
        at = np.array([c for c, _ in centres])
        who = np.array([w for _, w in centres])[np.argmin(np.abs(grid[:, None] - at[None, :]), axis=1)]
        runs = _runs(who, max(1, int(round(self.min_turn / ((seg.end - seg.start) / steps)))))
        if len(runs) == 1:
            return [Segment(seg.start, seg.end, str(runs[0][2]), seg.text, dict(seg.labels), list(seg.words))]
        edges = [seg.start + (seg.end - seg.start) * r[0] / steps for r in runs[1:]]
        return split_segment(seg, edges, [str(r[2]) for r in runs])


# ------------------------------------------------------------------ helpers
def _eigengap(embeddings: np.ndarray, max_speakers: int) -> tuple[int, np.ndarray]:
    """Speaker count and graph Laplacian by normalised maximum eigengap (Park et al., "Auto-tuning spectral
    clustering for speaker diarization using normalized maximum eigengap", 2019): the cosine affinity keeps each
    window's p nearest windows (binarised, symmetrised); over a grid of p, the one with the smallest p / g_p wins,
    g_p being the largest gap among the first max_speakers + 1 eigenvalues of the Laplacian over its largest
    eigenvalue. Returns (count, (n, n) Laplacian of the chosen p)."""
    from scipy.linalg import eigh

    n = len(embeddings)
    affinity = embeddings @ embeddings.T
    np.fill_diagonal(affinity, 1.0)
    nearest = np.argsort(-affinity, axis=1)
    best: tuple[float, int, np.ndarray] | None = None
    for p in sorted({max(2, int(x)) for x in np.linspace(2, max(3, n // 4), 12)}):
        graph = np.zeros((n, n))
        graph[np.arange(n)[:, None], nearest[:, :p]] = 1.0
        graph = 0.5 * (graph + graph.T)
        laplacian = np.diag(graph.sum(axis=1)) - graph
        values = eigh(laplacian, eigvals_only=True)
        gaps = np.diff(values[: min(max_speakers, n - 1) + 1])
        ratio = p / max(gaps.max() / max(values[-1], 1e-9), 1e-9)
        if best is None or ratio < best[0]:
            best = (ratio, int(np.argmax(gaps)) + 1, laplacian)
    return best[1], best[2]


def _spectral(laplacian: np.ndarray, count: int) -> np.ndarray:
    """(n,) labels: k-means (10 seeded starts, the lowest inertia kept) on the Laplacian's `count` first eigenvectors."""
    from scipy.cluster.vq import kmeans2
    from scipy.linalg import eigh

    _, vectors = eigh(laplacian, subset_by_index=[0, count - 1])
    best: tuple[float, np.ndarray] | None = None
    for seed in range(10):
        centres, labels = kmeans2(vectors, count, minit="++", seed=seed)
        inertia = float(((vectors - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    return best[1]


def _mean_off_diagonal(block: np.ndarray) -> float:
    """Mean similarity between different windows of one cluster (1 for a single window)."""
    n = len(block)
    return 1.0 if n < 2 else float((block.sum() - np.trace(block)) / (n * (n - 1)))


def _centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    sums = np.zeros((labels.max() + 1, embeddings.shape[1]))
    np.add.at(sums, labels, embeddings)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered 0..k-1 (order of first appearance)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse.reshape(-1)]


def _runs(who: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(start, end, label) runs of a label sequence, a run shorter than min_len steps joined to its longer neighbour
    (repeatedly, shortest first), neighbours of one label merged."""
    runs = [[0, 1, int(who[0])]]
    for k in range(1, len(who)):
        if who[k] == runs[-1][2]:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, int(who[k])])
    while len(runs) > 1:
        k = min(range(len(runs)), key=lambda r: runs[r][1] - runs[r][0])
        if runs[k][1] - runs[k][0] >= min_len:
            break
        left = runs[k - 1] if k > 0 else None
        right = runs[k + 1] if k + 1 < len(runs) else None
        into = left if right is None or (left is not None and left[1] - left[0] >= right[1] - right[0]) else right
        into[0], into[1] = min(into[0], runs[k][0]), max(into[1], runs[k][1])
        del runs[k]
        merged = [runs[0]]
        for r in runs[1:]:
            if r[2] == merged[-1][2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    return [(a, b, w) for a, b, w in runs]


def split_segment(seg: Segment, edges: list[float], speakers: list[str]) -> list[Segment]:
    """`seg` cut at the times `edges` (ascending, inside it) into len(edges) + 1 parts of `speakers`.

    With word times (seg.words: (text, start, end)) each word goes to the part its middle falls in, parts meet
    between the words either side of the change, and a part without a word joins its neighbour; without them the
    text's words are shared out in proportion to time. Labels are copied to every part.
    """
    bounds = [seg.start, *edges, seg.end]
    if seg.words:
        groups: list[list[tuple[str, float, float]]] = [[] for _ in speakers]
        for w in seg.words:
            groups[min(int(np.searchsorted(edges, 0.5 * (w[1] + w[2]))), len(speakers) - 1)].append(w)
        parts = [(sp, g) for sp, g in zip(speakers, groups) if g]
        merged: list[tuple[str, list]] = []
        for sp, g in parts:
            if merged and merged[-1][0] == sp:
                merged[-1][1].extend(g)
            else:
                merged.append((sp, list(g)))
        if len(merged) <= 1:
            return [Segment(seg.start, seg.end, merged[0][0] if merged else speakers[0], seg.text, dict(seg.labels), list(seg.words))]
        out = []
        for k, (sp, g) in enumerate(merged):
            start = seg.start if k == 0 else 0.5 * (merged[k - 1][1][-1][2] + g[0][1])
            end = seg.end if k == len(merged) - 1 else 0.5 * (g[-1][2] + merged[k + 1][1][0][1])
            out.append(Segment(start, max(end, start + 0.01), sp, " ".join(w[0] for w in g), dict(seg.labels), list(g)))
        return out
    tokens = seg.text.split()
    shares: list[list[str]] = [[] for _ in speakers]
    if tokens:
        weights = np.cumsum([len(t) + 1 for t in tokens], dtype=np.float64)
        middles = seg.start + (seg.end - seg.start) * (weights - 0.5 * np.array([len(t) + 1 for t in tokens])) / weights[-1]
        for t, m in zip(tokens, middles):
            shares[min(int(np.searchsorted(edges, m)), len(speakers) - 1)].append(t)
    out = []
    for k, sp in enumerate(speakers):
        text = " ".join(shares[k])
        if tokens and not text and out:  # a part with no word of the text: its time goes to the previous part
            out[-1].end = bounds[k + 1]
            continue
        if out and out[-1].speaker == sp:
            out[-1].end, out[-1].text = bounds[k + 1], (out[-1].text + " " + text).strip()
            continue
        out.append(Segment(bounds[k], bounds[k + 1], sp, text, dict(seg.labels)))
    if tokens and not out[0].text and len(out) > 1:  # the first part had no words: the second starts at the utterance's start
        out[1].start = out[0].start
        out = out[1:]
    return out


__all__ = ["DEFAULTS", "DEFAULT_MODE", "Diarizer", "MODES", "diarize_spec", "diarizer_from_spec", "is_active", "split_segment"]
