"""Align time-stamped feature rows to utterance intervals: overlap-weighted means, vectorised.

A modality arrives as rows with intervals, `(n, 2)` seconds, and features, `(n, d)`: word vectors with
word timings, acoustic frames at 100 Hz, facial frames at 30 Hz. An utterance is an interval `[s, e]`.
Its feature vector is the mean of the rows that overlap it, each weighted by the length of the overlap:

    w_i = max(0, min(b_i, e) - max(a_i, s))        for row i with interval [a_i, b_i]
    x   = sum_i w_i f_i / sum_i w_i

so a word half inside the utterance counts half, and frames at any rate reduce to a time average.

Zero-length intervals (point events) carry no duration, so they get a rule of their own:
- a point row (a_i == b_i) counts only where no row with a duration overlaps the utterance; then the
  utterance is the plain mean of the point rows inside its closed interval (s <= a_i <= e). A modality made
  only of point samples therefore reduces to the mean of the samples that fall in each utterance, and a
  mixed modality is never skewed by instants weighted against seconds;
- a zero-length utterance (s == e) takes the plain mean of the rows whose closed interval contains s.
An utterance with no row under either rule gets zeros and is reported as uncovered.

Cost: rows are sorted by start once; for each utterance two binary searches (`searchsorted` on the
starts and on the running maximum of the ends) bound the candidate rows, so the work is proportional to
the rows that actually overlap, not to rows x utterances.
"""

from __future__ import annotations

import numpy as np


def candidate_ranges(starts: np.ndarray, ends: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges that may touch each segment.

    `starts`, `ends`: (n,) float64, rows sorted by start. `seg`: (k, 2) float64.
    Returns `lo`, `hi`: (k,) int64 such that every row whose closed interval meets segment j lies in
    `lo[j]:hi[j]` (the range may also hold rows that do not touch it; callers compute exact weights).
    """
    reach = np.maximum.accumulate(ends)  # rows before lo all end before s, even if intervals overlap
    lo = np.searchsorted(reach, seg[:, 0], side="left")
    hi = np.searchsorted(starts, seg[:, 1], side="right")
    return lo, np.maximum(hi, lo)


def overlap_mean(intervals: np.ndarray, features: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overlap-weighted mean of feature rows per segment (rules in the module docstring).

    intervals: (n, 2) seconds, end >= start, any order. features: (n, d) finite floats.
    segments: (k, 2) seconds, end >= start.
    Returns (means (k, d) float32, covered (k,) bool); uncovered segments are zero rows.
    """
    k = len(segments)
    d = features.shape[1]
    out = np.zeros((k, d), dtype=np.float32)
    covered = np.zeros(k, dtype=bool)
    if k == 0 or len(intervals) == 0:
        return out, covered
    iv = np.asarray(intervals, dtype=np.float64)
    seg = np.asarray(segments, dtype=np.float64)
    starts = iv[:, 0]
    if (np.diff(starts) < 0).any():
        order = np.argsort(starts, kind="stable")
        iv, features, starts = iv[order], features[order], starts[order]
    ends = iv[:, 1]

    lo, hi = candidate_ranges(starts, ends, seg)
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return out, covered
    # Flatten all (segment, row) candidate pairs; pairs of one segment are contiguous.
    offsets = np.cumsum(counts) - counts
    seg_idx = np.repeat(np.arange(k), counts)
    row_idx = np.arange(total) - np.repeat(offsets - lo, counts)

    a, b = starts[row_idx], ends[row_idx]
    s, e = seg[seg_idx, 0], seg[seg_idx, 1]
    weight = np.clip(np.minimum(b, e) - np.maximum(a, s), 0.0, None)
    has_duration = np.bincount(seg_idx, weights=weight, minlength=k) > 0
    # Fallback for segments without any duration overlap: plain mean of point rows / rows at a point.
    touches = (a <= e) & (b >= s)
    point_pair = touches & ((a == b) | (s == e))
    weight = np.where(has_duration[seg_idx], weight, point_pair.astype(np.float64))
    norm = np.bincount(seg_idx, weights=weight, minlength=k)
    covered = norm > 0

    weighted = features[row_idx].astype(np.float64) * weight[:, None]
    nonempty = counts > 0
    sums = np.add.reduceat(weighted, offsets[nonempty], axis=0)
    ok = covered[nonempty]
    rows = np.flatnonzero(nonempty)[ok]
    out[rows] = (sums[ok] / norm[rows, None]).astype(np.float32)
    return out, covered


def words_in_segments(intervals: np.ndarray, words: list[str], segments: np.ndarray, skip: frozenset[str] = frozenset({"sp"})) -> list[str]:
    """Join the words whose midpoint falls in each segment, half-open `[s, e)` so a word at a shared
    boundary goes to one utterance only (a zero-length segment takes words whose midpoint equals s).

    intervals: (n, 2) seconds; words: n strings; segments: (k, 2). Tokens in `skip` (the SDK's "sp"
    silence marker) are left out. Returns k strings.
    """
    if len(words) == 0:
        return [""] * len(segments)
    iv = np.asarray(intervals, dtype=np.float64)
    mid = iv.mean(axis=1)
    order = np.argsort(mid, kind="stable")
    mid = mid[order]
    seg = np.asarray(segments, dtype=np.float64)
    lo = np.searchsorted(mid, seg[:, 0], side="left")
    hi = np.where(seg[:, 1] > seg[:, 0], np.searchsorted(mid, seg[:, 1], side="left"), np.searchsorted(mid, seg[:, 1], side="right"))
    out = []
    for j in range(len(seg)):
        toks = (words[i] for i in order[lo[j] : hi[j]])
        out.append(" ".join(t for t in toks if t and t not in skip))
    return out
