"""all-MiniLM-L6-v2 as plain torch: its BERT encoder, mean pooling and L2 normalisation, read from the packaged
folder (model.safetensors, tokenizer.json, config.json).

Why not sentence-transformers: importing it costs ~6 s (it pulls transformers' model zoo and scikit-learn),
three quarters of a cold `predict` with the shipped model, for what is a 6-layer encoder. This module imports
only torch, safetensors and tokenizers, and computes the same thing: tests/test_text_minilm.py compares its
embeddings with sentence-transformers' on the same sentences (they agree to float32 rounding).

The encoder, per layer l (post-LayerNorm BERT; H heads of width d = hidden / H):
    a_l = LN(x_l + W_o · MultiHeadAttention(W_q x_l, W_k x_l, W_v x_l; padding masked) )
    x_{l+1} = LN(a_l + W_2 · GELU(W_1 a_l))
with x_0 = LN(word[token] + position[i] + type[0]). The sentence vector is the mean of the last layer's rows
over the real (non-padding) tokens, divided by its L2 norm.

The pieces are exposed for fine-tuning (pipeline/training/finetune.py): `token_states` runs the lower layers
once (their states are cached), `bert_layer` is one layer as a function of a weight mapping (the tuned layers'
parameters, or the base weights), `pool` ends the encoder; `adapted` gives the encoder with some weights
replaced (a fine-tuned delta, extractors/minilm_delta.py); `file_sha256` names the packaged weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

LAYER_WEIGHTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")


def layer_prefix(i: int) -> str:
    return f"encoder.layer.{i}"


def layer_names(i: int) -> list[str]:
    """The weight names of layer i (weights and biases; LayerNorm gains and shifts)."""
    return [f"{layer_prefix(i)}.{m}.{p}" for m in LAYER_WEIGHTS for p in ("weight", "bias")]


def bert_layer(x: Any, keep: Any, w: Mapping[str, Any], prefix: str, heads: int, eps: float, dropout: float = 0.0) -> Any:
    """One post-LayerNorm BERT layer. x: (B, L, hidden) float32; keep: (B, 1, 1, L) bool, the keys a query may
    attend (real tokens); w: weight name -> tensor (names as in model.safetensors). dropout: BERT's, on the
    attention probabilities and on each sublayer's output before its residual (training only; 0 in inference).
    Returns (B, L, hidden)."""
    import torch.nn.functional as F

    b, n, hidden = x.shape
    d = hidden // heads

    def linear(t, name):
        return F.linear(t, w[f"{prefix}.{name}.weight"], w[f"{prefix}.{name}.bias"])

    def ln(t, name):
        return F.layer_norm(t, (hidden,), w[f"{prefix}.{name}.weight"], w[f"{prefix}.{name}.bias"], eps)

    def split(t):
        return t.view(b, n, heads, d).transpose(1, 2)

    q, k, v = (split(linear(x, f"attention.self.{m}")) for m in ("query", "key", "value"))
    scores = ((q @ k.transpose(-1, -2)) / math.sqrt(d)).masked_fill(~keep, float("-inf"))
    probs = scores.softmax(-1)
    if dropout:
        probs = F.dropout(probs, dropout)
    ctx = (probs @ v).transpose(1, 2).reshape(b, n, hidden)
    out = linear(ctx, "attention.output.dense")
    a = ln(x + (F.dropout(out, dropout) if dropout else out), "attention.output.LayerNorm")
    out = linear(F.gelu(linear(a, "intermediate.dense")), "output.dense")
    return ln(a + (F.dropout(out, dropout) if dropout else out), "output.LayerNorm")


def pool(states: Any, mask: Any) -> Any:
    """Mean over the real tokens, L2-normalised: states (B, L, hidden), mask (B, L) bool -> (B, hidden)."""
    import torch

    m = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class MiniLMEncoder:
    """Sentences -> (n, hidden) float32 unit-norm embeddings, on the CPU, in eval mode (no dropout)."""

    def __init__(self, folder: str | Path) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{folder}: not a BERT encoder with GELU ({config.get('model_type')}, {config.get('hidden_act')})")
        self.folder = folder
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.max_positions = int(config["max_position_embeddings"])
        self.w = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
        missing = [k for k in ("embeddings.word_embeddings.weight", f"encoder.layer.{self.layers - 1}.output.dense.weight") if k not in self.w]
        if missing:
            raise ValueError(f"{folder}: model.safetensors lacks {', '.join(missing)}")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.pad_id = int(config.get("pad_token_id", 0))
        self.torch = torch
        self.delta_sha256: str | None = None  # set on an adapted copy

    def adapted(self, weights: Mapping[str, Any], sha256: str) -> "MiniLMEncoder":
        """A copy that shares this encoder's tokenizer and weights except `weights` (name -> tensor, cast to
        float32), which replace the base's. ValueError for a name the base does not have or another shape."""
        for name, value in weights.items():
            if name not in self.w or tuple(self.w[name].shape) != tuple(value.shape):
                raise ValueError(f"weight {name} {tuple(value.shape)} is not one of the encoder's")
        new = object.__new__(MiniLMEncoder)
        new.__dict__.update(self.__dict__)
        new.w = {**self.w, **{k: v.float() for k, v in weights.items()}}
        new.delta_sha256 = sha256
        return new

    def tokenize(self, texts: list[str], max_seq_length: int) -> list[list[int]]:
        """Word-piece ids of each text, [CLS] and [SEP] included, truncated to max_seq_length (at most the
        model's positions). Any string tokenises: an empty one is [CLS] [SEP], unknown scripts become [UNK]."""
        self.tokenizer.enable_truncation(max_length=min(int(max_seq_length), self.max_positions))
        self.tokenizer.no_padding()
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def padded(self, ids: list[list[int]]) -> tuple[Any, Any]:
        """(B, L) int64 ids and (B, L) bool mask of a list of id lists, padded to the longest."""
        torch = self.torch
        n = max(len(i) for i in ids)
        out = torch.full((len(ids), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), n), dtype=torch.bool)
        for r, row in enumerate(ids):
            out[r, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, :len(row)] = True
        return out, mask

    def embed(self, ids: Any) -> Any:
        """(B, L) ids -> (B, L, hidden) input states x_0."""
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:ids.shape[1]] \
            + w["embeddings.token_type_embeddings.weight"][0]
        return self.torch.nn.functional.layer_norm(x, (self.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)

    def run_layers(self, x: Any, mask: Any, start: int, stop: int) -> Any:
        """Layers start..stop-1 over x (B, L, hidden) with mask (B, L) bool -> (B, L, hidden)."""
        keep = mask[:, None, None, :]  # a query attends to the real tokens only
        for i in range(start, stop):
            x = bert_layer(x, keep, self.w, layer_prefix(i), self.heads, self.eps)
        return x

    def _forward(self, ids, mask):
        """ids, mask: (B, L) int64 / bool -> (B, L, hidden) last-layer states."""
        return self.run_layers(self.embed(ids), mask, 0, self.layers)

    def _batches(self, encoded: list[list[int]], batch_size: int):
        """(positions, ids, mask) per batch, texts in order of length so batches pad little."""
        order = np.argsort([-len(e) for e in encoded], kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            yield chunk, *self.padded([encoded[j] for j in chunk])

    def encode(self, texts: list[str], max_seq_length: int, batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) float32 unit-norm rows; each text truncated to max_seq_length word pieces
        ([CLS] and [SEP] included). Texts are batched in order of length, so batches pad little."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        with self.torch.inference_mode():
            for chunk, ids, mask in self._batches(self.tokenize(texts, max_seq_length), batch_size):
                out[chunk] = pool(self._forward(ids, mask), mask).numpy()
        return out

    def token_states(self, texts: list[str], max_seq_length: int, upto: int, batch_size: int = 64) -> list[np.ndarray]:
        """The states after the first `upto` layers (0: the embeddings), per text (n_tokens_i, hidden) float16:
        what fine-tuning the layers above reads, computed once per text."""
        if not 0 <= upto <= self.layers:
            raise ValueError(f"upto {upto}: the encoder has layers 0..{self.layers}")
        out: list[np.ndarray] = [np.zeros((0, self.hidden), np.float16)] * len(texts)
        with self.torch.inference_mode():
            for chunk, ids, mask in self._batches(self.tokenize(texts, max_seq_length), batch_size):
                states = self.run_layers(self.embed(ids), mask, 0, upto).half().numpy()
                lengths = mask.sum(1).tolist()
                for r, j in enumerate(chunk):
                    out[j] = states[r, :lengths[r]].copy()
        return out
