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
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


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

    def _ln(self, x, name: str):
        return self.torch.nn.functional.layer_norm(x, (self.hidden,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _linear(self, x, name: str):
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _forward(self, ids, mask):
        """ids, mask: (B, L) int64 / bool -> (B, L, hidden) last-layer states."""
        F = self.torch.nn.functional
        b, n = ids.shape
        d = self.hidden // self.heads
        x = self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:n] \
            + self.w["embeddings.token_type_embeddings.weight"][0]
        x = self._ln(x, "embeddings.LayerNorm")
        keep = mask[:, None, None, :]  # (B, 1, 1, L): a query attends to the real tokens only
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def heads(t):
                return t.view(b, n, self.heads, d).transpose(1, 2)

            q, k, v = (heads(self._linear(x, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
            scores = scores.masked_fill(~keep, float("-inf"))
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, self.hidden)
            a = self._ln(x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            x = self._ln(a + self._linear(F.gelu(self._linear(a, f"{p}.intermediate.dense")), f"{p}.output.dense"), f"{p}.output.LayerNorm")
        return x

    def encode(self, texts: list[str], max_seq_length: int, batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) float32 unit-norm rows; each text truncated to max_seq_length word pieces
        ([CLS] and [SEP] included). Texts are batched in order of length, so batches pad little."""
        torch = self.torch
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        self.tokenizer.enable_truncation(max_length=min(int(max_seq_length), self.max_positions))
        self.tokenizer.no_padding()
        encoded = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encoded], kind="stable")
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                n = max(len(encoded[j].ids) for j in chunk)
                ids = torch.full((len(chunk), n), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), n), dtype=torch.bool)
                for r, j in enumerate(chunk):
                    length = len(encoded[j].ids)
                    ids[r, :length] = torch.tensor(encoded[j].ids, dtype=torch.long)
                    mask[r, :length] = True
                states = self._forward(ids, mask)
                m = mask.unsqueeze(-1).float()
                pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
                out[chunk] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out
