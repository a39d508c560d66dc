"""The one seeded split of videos, used for train/test (extract, import text, import csd) and for the
validation share of the training videos.

A video is held out when a hash of (purpose, seed, video id) falls below the ratio: its side depends on its
own id and the seed alone, never on which other videos exist, so adding or removing clips moves no other
video across the split. Only tiny sets are nudged: with two or more free videos and a ratio above 0, at
least one is held out and at least one kept (the video with the lowest, or highest, hash moves).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

SPLITS = ("train", "test")  # the splits a video may be given (labels.csv, a text CSV's split column)


def _unit(purpose: str, seed: int, video: str) -> float:
    digest = hashlib.sha256(f"{purpose}\0{seed}\0{video}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(videos: Iterable[str], ratio: float, seed: int, purpose: str, fixed: dict[str, bool] | None = None) -> tuple[list[str], list[str]]:
    """(kept, held) in the order of `videos`. `purpose` ("test", "valid") makes the splits of different uses
    independent; `fixed` forces a video's side (True: held out)."""
    videos = list(videos)
    fixed = fixed or {}
    free = [v for v in videos if v not in fixed]
    score = {v: _unit(purpose, seed, v) for v in free}
    held = {v for v in free if score[v] < ratio}
    if ratio > 0 and len(free) >= 2:
        if not held:
            held.add(min(free, key=score.__getitem__))
        elif len(held) == len(free):
            held.discard(max(free, key=score.__getitem__))
    held |= {v for v, h in fixed.items() if h}
    return [v for v in videos if v not in held], [v for v in videos if v in held]


def split_videos(video_ids: list[str], test_ratio: float, seed: int, fixed: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(train, test) lists of video ids: videos with a split in `fixed` (e.g. from labels.csv: "train" or "test")
    keep it; the others go by hash_split, so a video stays on its side when other clips are added or fail."""
    return hash_split(video_ids, test_ratio, seed, "test", {v: s == "test" for v, s in (fixed or {}).items()})
