"""Numbers a user gives (command-line options, --grid values): finite and in range, or refused with one line.

    p.add_argument("--lr", type=POSITIVE)          # argparse: "argument --lr: 'nan' is not a finite number ..."
    value = RATIO.parse("0.3", "--test-ratio")     # elsewhere: UserError naming the option

Each `Number` knows its kind (int or float) and its range, so the message says what would be accepted. A
float option refuses nan and inf (float() accepts both, and they would otherwise reach a model, a split or a
frame rate); an int option refuses 1.5 and 1e3.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from core.errors import UserError

MAX_DIM = 1 << 16  # widest feature set or layer accepted: nothing here is near it, so a bigger number is a broken file


@dataclass(frozen=True)
class Number:
    """An int or float in [low, high] (either end open, either end None for unbounded)."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The accepted values in words, e.g. "a number in [0, 1)", "an integer >= 1"."""
        what = "an integer" if self.kind is int else "a number"
        low, high = (self._spell(v) for v in (self.low, self.high))
        if self.low is not None and self.high is not None:
            if self.kind is int:
                return f"{what} in {low}..{high}"
            return f"{what} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {high}"
        return "a finite number" if self.kind is float else what

    def _spell(self, v: float | None) -> str:
        return "" if v is None else str(int(v)) if self.kind is int else f"{v:g}"

    def problem(self, value: float) -> str | None:
        """Why `value` is refused, or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{value!r} is not {self.describe()}"
        if self.kind is int and not float(value).is_integer():
            return f"{value!r} is not an integer; give {self.describe()}"
        if not math.isfinite(value):
            return f"{value!r} is not a finite number; give {self.describe()}"
        low_bad = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if low_bad or high_bad:
            return f"{self._spell(value)} is out of range; give {self.describe()}"
        return None

    def convert(self, text: str) -> int | float:
        """`text` as this number; ValueError with the reason when it is not one or is out of range."""
        spelled = str(text).strip()
        try:
            value: int | float = int(spelled) if self.kind is int else float(spelled)
        except ValueError:
            raise ValueError(f"{spelled!r} is not {self.describe()}") from None
        if not math.isfinite(value):
            raise ValueError(f"{spelled!r} is not a finite number; give {self.describe()}")
        why = self.problem(value)
        if why:
            raise ValueError(why)
        return value

    def __call__(self, text: str) -> int | float:
        """argparse type: the value, or ArgumentTypeError (argparse prefixes the option's name)."""
        try:
            return self.convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    def parse(self, text: str, option: str) -> int | float:
        """The value, or UserError naming `option`."""
        try:
            return self.convert(text)
        except ValueError as e:
            raise UserError(f"{option}: {e}") from None

    def check(self, value: float, option: str) -> None:
        """UserError naming `option` when an already typed value is refused (library entry points)."""
        why = self.problem(value)
        if why:
            raise UserError(f"{option}: {why}")

    @property
    def __name__(self) -> str:  # argparse names a type in some messages
        return self.kind.__name__


RATIO = Number(float, 0, 1, high_open=True)  # shares of videos, dropout probabilities: [0, 1)
POSITIVE = Number(float, 0, None, low_open=True)
NON_NEGATIVE = Number(float, 0)
COUNT = Number(int, 1)  # epochs, batch size, patience, workers
SEED = Number(int, 0, 2**32 - 1)  # numpy's seeds are 32-bit and unsigned
FPS = Number(float, 0, 120, low_open=True)  # frames sampled per second of video
PORT = Number(int, 0, 65535)
WIDTH = Number(int, 1, MAX_DIM)  # model and feature widths
GPUS = Number(float, 0, 1024)
MEGABYTES = Number(float, 0, 1 << 20, low_open=True)
QUEUE = Number(int, 0, 1 << 16)
TUNED_LAYERS = Number(int, 0, 6)  # MiniLM's top layers that `train --finetune-text` trains (0: frozen; it has 6)
TOKENS = Number(int, 256, 1 << 24)  # word pieces the fine-tuned encoder runs on at once (a chunk of a batch)


def int_list(value: str, each: Number = SEED, example: str = "1,2,3") -> list[int]:
    """`1,2,3` -> [1, 2, 3]: distinct integers, each checked by `each` (argparse type)."""
    parts = [v.strip() for v in value.split(",") if v.strip()]
    try:
        numbers = [each.convert(v) for v in parts]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r}: {e}; give distinct integers, comma-separated, e.g. {example}") from None
    if not numbers or len(set(numbers)) != len(numbers):
        raise argparse.ArgumentTypeError(f"{value!r}: give distinct integers, comma-separated, e.g. {example}")
    return [int(n) for n in numbers]
