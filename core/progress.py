"""The one progress hook of the library code: `progress(done, total, stage=..., **figures)`.

Library functions (extraction, imports, training, evaluation, predict) take an optional `progress` and call
it as work advances; they never draw anything. The CLI passes a callable that draws a progress bar:

    def progress(done: int, total: int, *, stage: str | None = None, **figures) -> None: ...

- done, total: items finished and items in all (clips, videos, batches, runs);
- stage: what is being counted, e.g. "epoch 3/50"; a call whose stage differs from the previous call's starts
  a new bar (None keeps the current one, or the caller's default title);
- figures: numbers or short strings shown beside the bar (loss=0.41, failed=2).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, *, stage: str | None = None, **figures: float | int | str) -> None: ...
