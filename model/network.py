"""Multilogue-Net: per-modality party/global/emotion recurrences, pairwise attention fusion, task heads.

Equations (Shenoy & Sardana 2020, arXiv 2002.08267, in our words; README "The model"), per dialogue of T
utterances and P parties, for modality m with utterance features u_t and context features c_t (the text
features):

    g_t  = GRU_G([c_t ; q_{spk,t-1}], g_{t-1})                 global state        (dropout)
    a_t  = sum_{j<t} softmax_j(w . g_j) g_j                     attention over history (0 at t=1)
    q'   = GRU_P([u_t ; a_t], q_{spk,t-1});  q_{spk,t} = q'     speaker's state     (dropout)
                                             q_{p,t} = q_{p,t-1} for listeners
    e_t  = GRU_E(q_{spk,t}, e_{t-1})                            emotion state       (dropout)

The implementation is vectorised for speed, with the same math as the literal loop:
- every cell's input projections that do not depend on the recurrent state ([c_t], [u_t]) are computed
  for all steps in one matmul before the loop;
- the 3 modalities (x 2 directions for the categorical heads) run as one stacked recurrence (bmm over
  the cell axis), so each step costs a handful of kernels instead of 6x as many;
- only the speaker's party state is pushed through GRU_P (listeners keep theirs, so computing theirs
  and discarding it is wasted work);
- attention over the growing history is an online softmax (running max, numerator, denominator);
- dialogues are sorted by length and the batch shrinks as dialogues end, so padded steps cost nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig
from model.tasks import get_task

MODALITY_ORDER = ("text", "audio", "visual")


class DialogueCell(nn.Module):
    """The parameters of one modality's recurrence (GRU_G, attention w, GRU_P, GRU_E)."""

    def __init__(self, d_utt: int, d_ctx: int, d_global: int, d_party: int, d_emotion: int):
        super().__init__()
        self.d_ctx, self.d_utt = d_ctx, d_utt
        self.g_cell = nn.GRUCell(d_ctx + d_party, d_global)
        self.p_cell = nn.GRUCell(d_utt + d_global, d_party)
        self.e_cell = nn.GRUCell(d_party, d_emotion)
        self.attention = nn.Linear(d_global, 1, bias=False)


def _gru(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """GRU update from precomputed input (gi) and hidden (gh) projections, gate order r, z, n."""
    hidden = h.shape[-1]
    rz = torch.sigmoid(gi[..., : 2 * hidden] + gh[..., : 2 * hidden])
    r, z = rz[..., :hidden], rz[..., hidden:]
    n = torch.tanh(gi[..., 2 * hidden :] + r * gh[..., 2 * hidden :])
    return n + z * (h - n)


def dropout_(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout from a uniform draw: the distribution of F.dropout, at a fraction of the cost
    of its Bernoulli sampling on CPU (the recurrence calls it three times per step)."""
    if p <= 0 or not training:
        return x
    return x * torch.rand_like(x).gt_(p).mul_(1.0 / (1.0 - p))


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(tensors, 0)


def run_cells(
    cells: list[DialogueCell],
    utt: list[torch.Tensor],
    ctx: list[torch.Tensor],
    speaker_idx: torch.Tensor,
    speaker_onehot: torch.Tensor,
    active: list[int],
    dropout: float,
    training: bool,
    present: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run K independent cells as one stacked recurrence over time.

    cells: K cells; utt[k]: (T, B, d_utt_k); ctx[k]: (T, B, d_ctx) time-major inputs, dialogues sorted
    by length (longest first). speaker_idx: (K, T, B) long; speaker_onehot: (K, T, B, P) float, zero
    rows at padding. active[t]: how many dialogues still run at step t (non-increasing).
    present: (K, T, B) bool or None (all present). At a step where cell k's modality is absent, that
    cell skips the step: its global, party and emotion states stay as they were and its global state
    does not join the attention history; its output there is the carried emotion state (masked later).
    Returns e: (K, T, B, d_emotion), zeros where a dialogue has ended.
    """
    T, B = speaker_idx.shape[1:]
    P = speaker_onehot.shape[-1]
    K = len(cells)
    d_g = cells[0].g_cell.hidden_size
    d_p = cells[0].p_cell.hidden_size
    d_e = cells[0].e_cell.hidden_size
    device, dtype = utt[0].device, utt[0].dtype

    # Input projections that do not depend on the recurrent state, for all steps at once.
    # Only the rows that are active at each step (a dialogue still running) are projected: the packed
    # rows of step t are the first active[t] dialogues. The per-step pieces come from one split, whose
    # backward is a single concatenation (slicing a big tensor per step would make autograd build a
    # gradient the size of the whole tensor at every step).
    steps = [t for t in range(T) if active[t] > 0]
    counts = [active[t] for t in steps]
    rows = torch.cat([torch.arange(n, device=device) + t * B for t, n in zip(steps, counts)])

    def packed_projection(inputs: list[torch.Tensor], which: str) -> tuple[torch.Tensor, ...]:
        out = []
        for x, c in zip(inputs, cells):
            gru = getattr(c, which)
            d_in = c.d_ctx if which == "g_cell" else c.d_utt
            out.append(F.linear(x.reshape(T * B, -1).index_select(0, rows), gru.weight_ih[:, :d_in], gru.bias_ih))
        return _stack(out).split(counts, dim=1)

    xg = packed_projection(ctx, "g_cell")  # per step: (K, n_t, 3 d_g)
    xp = packed_projection(utt, "p_cell")  # per step: (K, n_t, 3 d_p)
    # Recurrent-side weights, stacked over cells and transposed for bmm: (K, in, out).
    wq = _stack([c.g_cell.weight_ih[:, c.d_ctx :].t() for c in cells])
    wgh = _stack([c.g_cell.weight_hh.t() for c in cells])
    bgh = _stack([c.g_cell.bias_hh for c in cells]).unsqueeze(1)
    wa = _stack([c.p_cell.weight_ih[:, c.d_utt :].t() for c in cells])
    wph = _stack([c.p_cell.weight_hh.t() for c in cells])
    bph = _stack([c.p_cell.bias_hh for c in cells]).unsqueeze(1)
    wei = _stack([c.e_cell.weight_ih.t() for c in cells])
    bei = _stack([c.e_cell.bias_ih for c in cells]).unsqueeze(1)
    weh = _stack([c.e_cell.weight_hh.t() for c in cells])
    beh = _stack([c.e_cell.bias_hh for c in cells]).unsqueeze(1)
    watt = _stack([c.attention.weight[0] for c in cells]).unsqueeze(1)  # (K, 1, d_g)

    def drop(x: torch.Tensor) -> torch.Tensor:
        return dropout_(x, dropout, training)

    n = active[0]
    g = torch.zeros(K, n, d_g, device=device, dtype=dtype)
    q = torch.zeros(K, n, P, d_p, device=device, dtype=dtype)
    e = torch.zeros(K, n, d_e, device=device, dtype=dtype)
    num = torch.zeros(K, n, d_g, device=device, dtype=dtype)
    den = torch.zeros(K, n, 1, device=device, dtype=dtype)
    run_max = torch.full((K, n, 1), float("-inf"), device=device, dtype=dtype)
    outputs = []
    for t in range(T):
        n = active[t]
        if n == 0:
            break
        if g.shape[1] != n:  # dialogues that ended drop out of the batch
            g, q, e, num, den, run_max = (x[:, :n] for x in (g, q, e, num, den, run_max))
        idx = speaker_idx[:, t, :n].reshape(K, n, 1, 1).expand(K, n, 1, d_p)
        s = speaker_onehot[:, t, :n].unsqueeze(-1)  # (K, n, P, 1)
        here = None if present is None else present[:, t, :n].unsqueeze(-1)  # (K, n, 1) bool
        if here is not None:
            s = s * here.unsqueeze(-1).to(dtype)  # an absent step updates no party
        q_spk = q.gather(2, idx).squeeze(2)  # (K, n, d_p)

        gi = torch.baddbmm(xg[t], q_spk, wq)
        gh = torch.baddbmm(bgh, g, wgh)
        g_new = drop(_gru(gi, gh, g))
        g = g_new if here is None else torch.where(here, g_new, g)

        if here is not None:  # no history yet (t = 0, or every earlier step absent) gives a = 0
            a = num / den.clamp_min(1e-30)
        elif t == 0:
            a = torch.zeros(K, n, d_g, device=device, dtype=dtype)
        else:
            a = num / den
        pi = torch.baddbmm(xp[t], a, wa)
        ph = torch.baddbmm(bph, q_spk, wph)
        q_new = drop(_gru(pi, ph, q_spk))
        q = q * (1 - s) + q_new.unsqueeze(2) * s
        q_sel = q.gather(2, idx).squeeze(2)

        ei = torch.baddbmm(bei, q_sel, wei)
        eh = torch.baddbmm(beh, e, weh)
        e_new = drop(_gru(ei, eh, e))
        e = e_new if here is None else torch.where(here, e_new, e)
        outputs.append(F.pad(e, (0, 0, 0, B - n)) if n < B else e)

        # fold g_t into the attention history for later steps (online softmax)
        score = (g_new * watt).sum(-1, keepdim=True)  # (K, n, 1)
        new_max = torch.maximum(run_max, score)
        old_scale = torch.exp(run_max - new_max)
        new_w = torch.exp(score - new_max)
        if here is None:
            num = num * old_scale + new_w * g
            den = den * old_scale + new_w
            run_max = new_max
        else:  # only present steps join the history
            num = torch.where(here, num * old_scale + new_w * g_new, num)
            den = torch.where(here, den * old_scale + new_w, den)
            run_max = torch.where(here, new_max, run_max)

    out = torch.stack(outputs, dim=1)  # (K, T', B, d_e)
    return F.pad(out, (0, 0, 0, 0, 0, T - out.shape[1])) if out.shape[1] < T else out


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays at the end."""
    T, B = x.shape[:2]
    steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    lens = lengths.to(x.device).unsqueeze(0)  # (1, B)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (T, B)
    index = index.view(T, B, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def pair_fusion(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, mask_y: torch.Tensor | None = None) -> torch.Tensor:
    """Bimodal attention: x, y (B, T, D); mask (B, T) bool: the utterances of x that may be attended
    (None: attend over padding too); mask_y: the same for y (default: mask).

    C = x y^T; x' = softmax_rows(C) y * x; y' = softmax_rows(C^T) x * y; returns [x' ; y'] (B, T, 2D).
    With absent modalities the masks differ: x attends only to utterances where y is present and the
    other way round. A dialogue in which one side has no utterance at all is left unmasked, not NaN: that
    side is all zeros (absent rows are zeroed before fusion), so both halves come out zero anyway.
    """
    mask_y = mask if mask_y is None else mask_y
    c = torch.bmm(x, y.transpose(1, 2))
    ct = c.transpose(1, 2)
    for keys, which in ((mask_y, "c"), (mask, "ct")):
        if keys is None:
            continue
        hide = ~keys.unsqueeze(1)  # (B, 1, T)
        hide = hide & keys.any(1).view(-1, 1, 1)  # rows with no key at all stay unmasked (see above)
        if which == "c":
            c = c.masked_fill(hide, float("-inf"))
        else:
            ct = ct.masked_fill(hide, float("-inf"))
    x_att = torch.bmm(torch.softmax(c, dim=-1), y) * x
    y_att = torch.bmm(torch.softmax(ct, dim=-1), x) * y
    return torch.cat([x_att, y_att], dim=-1)


class MultilogueNet(nn.Module):
    """Multilogue-Net for one task (model.tasks): binary / emotion (2 classes) / emotion-class (7), bidirectional,
    or regression (-3..3, forward only).

    forward(text (B,T,d_text), audio (B,T,d_audio), visual (B,T,d_visual), speakers (B,T,P) one-hot,
    mask (B,T) bool, present (B,T,3) bool or None) -> (B,T,C) log-probabilities, or (B,T) sentiment scores.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        cfg = config
        dims = {"text": cfg.d_text, "audio": cfg.d_audio, "visual": cfg.d_visual}

        def cells() -> nn.ModuleList:
            return nn.ModuleList(DialogueCell(dims[m], cfg.d_text, cfg.d_global, cfg.d_party, cfg.d_emotion) for m in MODALITY_ORDER)

        self.forward_cells = cells()
        self.backward_cells = cells() if cfg.bidirectional else None
        width = 2 if cfg.bidirectional else 1
        self.hidden = nn.Linear(width * cfg.d_emotion, width * cfg.d_hidden)  # shared by the modalities
        # three fused pairs of 2 * (width * d_hidden) plus the three hidden vectors
        self.classifier = nn.Linear(9 * width * cfg.d_hidden, cfg.n_outputs)
        # Feature standardisation from training statistics (buffers: saved, not trained).
        for m, d in dims.items():
            self.register_buffer(f"{m}_mean", torch.zeros(d))
            self.register_buffer(f"{m}_std", torch.ones(d))

    def set_normalization(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """stats: modality -> (mean (d,), std (d,)) from the training set."""
        for m, (mean, std) in stats.items():
            getattr(self, f"{m}_mean").copy_(torch.as_tensor(mean))
            getattr(self, f"{m}_std").copy_(torch.as_tensor(std).clamp_min(1e-6))

    def forward(self, text: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, speakers: torch.Tensor, mask: torch.Tensor,
                present: torch.Tensor | None = None) -> torch.Tensor:
        """present: (B, T, 3) bool, which modalities (text, audio, visual) each utterance has; None: all.

        An absent modality is masked out, not fed as zeros: its features are never read (replacing them
        changes nothing), its cell skips the step (run_cells), its hidden vector is zero, fusion attends only
        to utterances where it is present, and it adds nothing to the classifier's input. Without text, the
        audio and visual cells get a zero context (the training mean, after standardisation) in GRU_G.
        """
        cfg = self.config
        B, T = mask.shape
        mask = mask.bool()
        if present is not None:
            present = present.bool() & mask.unsqueeze(-1)
            if bool((present == mask.unsqueeze(-1)).all()):
                present = None  # everything present: the unmasked fast path
        lengths = mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_already = bool((order == torch.arange(B, device=order.device)).all())
        if not sorted_already:
            text, audio, visual, speakers, mask, lengths = (x[order] for x in (text, audio, visual, speakers, mask, lengths))
            present = None if present is None else present[order]
        keep = {m: (mask if present is None else present[..., k]) for k, m in enumerate(MODALITY_ORDER)}  # (B, T) each
        feats = {
            m: ((x - getattr(self, f"{m}_mean")) / getattr(self, f"{m}_std")) * keep[m].unsqueeze(-1).to(x.dtype)
            for m, x in zip(MODALITY_ORDER, (text, audio, visual))
        }
        # time-major for the recurrence
        tm = {m: x.transpose(0, 1) for m, x in feats.items()}
        spk = speakers.transpose(0, 1).to(text.dtype)  # (T, B, P); argmax of a padded (all-zero) row picks party 0, as the seed does
        if cfg.mask_fusion:
            lens_list = lengths.tolist()
            active = [sum(1 for L in lens_list if L > t) for t in range(T)]
        else:  # the seed runs padded steps too; their outputs reach the unmasked fusion
            active = [B] * T

        cells = list(self.forward_cells)
        utt = [tm[m] for m in MODALITY_ORDER]
        ctx = [tm["text"]] * 3
        spk_all = spk.unsqueeze(0).expand(3, T, B, -1)
        step_present = None if present is None else present.permute(2, 1, 0)  # (3, T, B)
        if cfg.bidirectional:  # the backward cells join the same stacked recurrence on reversed inputs
            cells += list(self.backward_cells)
            rev = {m: reverse_padded(x, lengths) for m, x in tm.items()}
            utt += [rev[m] for m in MODALITY_ORDER]
            ctx += [rev["text"]] * 3
            spk_all = torch.cat([spk_all, reverse_padded(spk, lengths).unsqueeze(0).expand(3, T, B, -1)])
            if step_present is not None:
                rev_present = reverse_padded(step_present.permute(1, 2, 0), lengths).permute(2, 0, 1)
                step_present = torch.cat([step_present, rev_present])
        e = run_cells(cells, utt, ctx, spk_all.argmax(-1), spk_all, active, cfg.recurrent_dropout, self.training, step_present)
        if cfg.bidirectional:  # (6, T, B, d_e) -> (3, T, B, 2 d_e), backward outputs back in time order
            valid = (torch.arange(T, device=e.device).unsqueeze(1) < lengths.unsqueeze(0)).to(e.dtype).unsqueeze(-1)
            bwd = torch.stack([reverse_padded(b, lengths) * valid for b in e[3:]])
            e = torch.cat([e[:3], bwd], dim=-1)

        e = dropout_(e, cfg.output_dropout, self.training)
        h = self.hidden(e)
        if cfg.bidirectional:
            h = F.relu(h)
        h = dropout_(h, cfg.dropout, self.training)
        h_t, h_a, h_v = (x.transpose(0, 1) for x in h)  # (B, T, D)
        if present is not None:  # an absent modality adds nothing downstream
            h_t, h_a, h_v = (x * keep[m].unsqueeze(-1).to(x.dtype) for x, m in zip((h_t, h_a, h_v), MODALITY_ORDER))
            base = mask if cfg.mask_fusion else torch.ones_like(mask)
            k_t, k_a, k_v = (base & keep[m] for m in MODALITY_ORDER)
        else:
            k_t = k_a = k_v = mask if cfg.mask_fusion else None
        fused = torch.cat(
            [pair_fusion(h_t, h_a, k_t, k_a), pair_fusion(h_v, h_a, k_v, k_a), pair_fusion(h_t, h_v, k_t, k_v), h_t, h_a, h_v],
            dim=-1,
        )
        out = get_task(cfg.task).head(self.classifier(fused))
        if not sorted_already:
            out = out[torch.argsort(order)]
        return out


class Ensemble(nn.Module):
    """Several MultilogueNets of one task and config (e.g. one per seed) used as one model: the mean of their
    class probabilities (returned as log-probabilities), or of their sentiment scores.

    forward takes the arguments of MultilogueNet.forward and returns the same shapes.
    """

    def __init__(self, members: list[MultilogueNet]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, *inputs: torch.Tensor | None) -> torch.Tensor:
        outs = torch.stack([m(*inputs) for m in self.members])
        if get_task(self.config.task).regression:
            return outs.mean(0)
        return torch.logsumexp(outs, dim=0) - torch.log(torch.tensor(float(len(self.members)), dtype=outs.dtype))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
