"""Torch view of a dataset: one item per dialogue, padded batches with utterance mask and speaker one-hot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from data.dataset import LABEL_COLUMNS, MODALITIES


def task_targets(labels: np.ndarray, task: str, emotion: str | None = None) -> np.ndarray:
    """(n, 7) labels -> (n,) float32 targets for `task`; NaN where unknown.

    regression: sentiment; binary: 1 if sentiment >= 0 else 0 (the seed's rule); emotion: 1 if the
    emotion's intensity > 0 else 0.
    """
    if task == "regression":
        return labels[:, 0].astype(np.float32)
    col = 0 if task == "binary" else LABEL_COLUMNS.index(emotion)
    raw = labels[:, col]
    out = (raw >= 0) if task == "binary" else (raw > 0)
    return np.where(np.isnan(raw), np.nan, out.astype(np.float32)).astype(np.float32)


@dataclass
class Batch:
    """Padded batch. text/audio/visual (B, T, d) float32; speakers (B, T, P) one-hot; mask (B, T) bool;
    targets (B, T) float32 (NaN where unknown or padded); sentiment (B, T) the raw sentiment column (for
    the non-zero binary metrics); videos: ids in batch order."""

    text: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    speakers: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor
    sentiment: torch.Tensor
    videos: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        tensors = (self.text, self.audio, self.visual, self.speakers, self.mask, self.targets, self.sentiment)
        return Batch(*(x.to(device) for x in tensors), self.videos)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        return self.text, self.audio, self.visual, self.speakers, self.mask


class DialogueDataset(Dataset):
    """Dialogues of `videos`, converted to tensors once; speakers become party indices in order of
    first appearance within each dialogue (the model has no per-party weights)."""

    def __init__(self, ds: dict, videos: Sequence[str], task: str = "binary", emotion: str | None = None):
        self.videos = list(videos)
        self.items = []
        for vid in self.videos:
            parties: dict[str, int] = {}
            who = torch.tensor([parties.setdefault(s, len(parties)) for s in ds["speakers"][vid]], dtype=torch.long)
            feats = [torch.from_numpy(np.ascontiguousarray(ds[f"{m}_feat"][vid], dtype=np.float32)) for m in MODALITIES]
            targets = torch.from_numpy(task_targets(ds["labels"][vid], task, emotion))
            sentiment = torch.from_numpy(np.ascontiguousarray(ds["labels"][vid][:, 0], dtype=np.float32))
            self.items.append((*feats, who, targets, sentiment, vid))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]

    def lengths(self) -> list[int]:
        return [item[0].shape[0] for item in self.items]


def collate(items: list) -> Batch:
    """Pad a list of dialogues into a Batch."""
    lengths = [it[0].shape[0] for it in items]
    B, T = len(items), max(lengths)
    P = max(int(it[3].max()) + 1 for it in items)
    dims = [items[0][k].shape[1] for k in range(3)]
    feats = [torch.zeros(B, T, d) for d in dims]
    who = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.bool)
    targets = torch.full((B, T), float("nan"))
    sentiment = torch.full((B, T), float("nan"))
    for b, (text, audio, visual, spk, tgt, sent, _) in enumerate(items):
        L = lengths[b]
        for k, x in enumerate((text, audio, visual)):
            feats[k][b, :L] = x
        who[b, :L] = spk
        mask[b, :L] = True
        targets[b, :L] = tgt
        sentiment[b, :L] = sent
    speakers = torch.nn.functional.one_hot(who, P).float() * mask.unsqueeze(-1)
    return Batch(*feats, speakers, mask, targets, sentiment, [it[-1] for it in items])
