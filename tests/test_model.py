"""Multilogue-Net: parameter counts, equivalence with the literal equations, edge cases, masking."""

import pytest
import torch

from model.config import ModelConfig
from model.network import MultilogueNet, count_parameters
from tests.reference_multilogue import reference_forward


def make_batch(lengths, parties=2, dims=(12, 10, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, L in enumerate(lengths):
        mask[b, :L] = True
    feats = [torch.randn(B, T, d, generator=g) * mask.unsqueeze(-1) for d in dims]
    who = torch.randint(0, parties, (B, T), generator=g)
    speakers = torch.nn.functional.one_hot(who, parties).float() * mask.unsqueeze(-1)
    return (*feats, speakers, mask)


def small_model(task, mask_fusion=True, dims=(12, 10, 6), seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig.for_task(task, *dims, d_global=9, d_party=8, d_emotion=7, d_hidden=5, mask_fusion=mask_fusion)
    model = MultilogueNet(cfg).eval()
    with torch.no_grad():  # non-trivial normalisation so that it is exercised too
        model.set_normalization({m: (torch.randn(d) * 0.1, torch.rand(d) + 0.5) for m, d in zip(("text", "audio", "visual"), dims)})
    return model


@pytest.mark.parametrize("task,expected", [("binary", 3_586_202), ("regression", 1_782_201), ("emotion", 3_586_202)])
def test_paper_parameter_counts(task, expected):
    assert count_parameters(MultilogueNet(ModelConfig.for_task(task, 300, 384, 35))) == expected


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("mask_fusion", [True, False])
def test_fast_model_matches_literal_equations(task, mask_fusion):
    model = small_model(task, mask_fusion)
    batch = make_batch([5, 2, 7, 1, 7, 3], parties=3)
    with torch.no_grad():
        fast = model(*batch)
        ref = reference_forward(model, *batch)
    mask = batch[-1]
    if mask_fusion:  # padded outputs are meaningless and masked everywhere downstream
        fast, ref = fast[mask], ref[mask]
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


def test_gradients_match_literal_equations():
    model = small_model("binary")
    batch = make_batch([4, 6, 2], parties=2)
    mask = batch[-1]
    model.zero_grad()
    model(*batch)[mask].sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    reference_forward(model, *batch)[mask].sum().backward()
    for a, (name, p) in zip(fast, model.named_parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_batch_of_one_dialogue_and_one_utterance(task):
    model = small_model(task)
    for lengths in ([1], [4], [1, 1]):
        batch = make_batch(lengths)
        with torch.no_grad():
            out = model(*batch)
            ref = reference_forward(model, *batch)
        assert out.shape[:2] == (len(lengths), max(lengths))
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_padding_does_not_change_real_outputs():
    model = small_model("binary")
    short = make_batch([3], seed=3)
    padded = make_batch([3, 9], seed=3)
    padded = tuple(torch.cat([s, p[1:]]) if s.dim() == p.dim() else p for s, p in zip([torch.nn.functional.pad(x, (0, 0, 0, 6)) if x.dim() == 3 else torch.nn.functional.pad(x, (0, 6)) for x in short], padded))
    with torch.no_grad():
        alone = model(*short)[0, :3]
        in_batch = model(*padded)[0, :3]
    torch.testing.assert_close(alone, in_batch, rtol=1e-4, atol=1e-5)


def test_faithful_mode_lets_padding_leak_into_fusion():
    """The seed's unmasked softmax attends over padded utterances; our default does not."""
    faithful = small_model("binary", mask_fusion=False)
    masked = small_model("binary", mask_fusion=True)
    masked.load_state_dict(faithful.state_dict())
    short = make_batch([3], seed=5)
    long = tuple(torch.nn.functional.pad(x, (0, 0, 0, 4)) if x.dim() == 3 else torch.nn.functional.pad(x, (0, 4)) for x in short)
    with torch.no_grad():
        assert torch.allclose(masked(*short)[0, :3], masked(*long)[0, :3], atol=1e-5)
        assert not torch.allclose(faithful(*short)[0, :3], faithful(*long)[0, :3], atol=1e-5)


def test_unsorted_batch_gives_same_result_as_each_dialogue_alone():
    model = small_model("regression")
    batch = make_batch([2, 6, 4], seed=7)
    with torch.no_grad():
        together = model(*batch)
        for b, L in enumerate([2, 6, 4]):
            alone = model(*(x[b : b + 1, :L] for x in batch))
            torch.testing.assert_close(together[b, :L], alone[0], rtol=1e-4, atol=1e-5)


def test_any_number_of_parties():
    model = small_model("binary")
    for parties in (1, 2, 5):
        with torch.no_grad():
            out = model(*make_batch([4, 3], parties=parties))
        assert torch.isfinite(out).all()


def test_dropout_keeps_expected_share_and_scale():
    from model.network import dropout_

    x = torch.ones(200_000)
    y = dropout_(x, 0.25, training=True)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert dropout_(x, 0.25, training=False) is x


# ---------------------------------------------------------------- absent modalities
def random_presence(lengths, seed=0, p_absent=0.4):
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    present = torch.rand(B, T, 3, generator=g) > p_absent
    present[0, :, 1] = False  # one dialogue without any audio
    present[1, :, :] = True  # one with everything
    return present


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("mask_fusion", [True, False])
def test_absent_modalities_match_literal_equations(task, mask_fusion):
    model = small_model(task, mask_fusion)
    lengths = [5, 2, 7, 1, 7, 3]
    batch = make_batch(lengths, parties=3)
    present = random_presence(lengths)
    with torch.no_grad():
        fast = model(*batch, present)
        ref = reference_forward(model, *batch, present)
    mask = batch[-1]
    if mask_fusion:
        fast, ref = fast[mask], ref[mask]
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


def test_absent_modality_gradients_match_literal_equations():
    model = small_model("binary")
    lengths = [4, 6, 2]
    batch = make_batch(lengths, parties=2)
    present = random_presence(lengths, seed=2)
    mask = batch[-1]
    model.zero_grad()
    model(*batch, present)[mask].sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    assert all(torch.isfinite(g).all() for g in fast)
    model.zero_grad()
    reference_forward(model, *batch, present)[mask].sum().backward()
    for a, (name, p) in zip(fast, model.named_parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_absent_features_are_never_read(task):
    """Replacing an absent modality's features by noise changes no output."""
    model = small_model(task)
    lengths = [6, 4, 3]
    batch = list(make_batch(lengths, seed=4))
    present = random_presence(lengths, seed=4)
    with torch.no_grad():
        before = model(*batch, present)
        noisy = list(batch)
        for k in range(3):
            noise = torch.randn_like(batch[k]) * 100
            noisy[k] = torch.where(present[..., k : k + 1], batch[k], noise)
        after = model(*noisy, present)
        changed = model(*[b + 1 for b in batch[:3]], *batch[3:], present)
    mask = batch[-1]
    torch.testing.assert_close(before[mask], after[mask], rtol=0, atol=0)
    assert not torch.allclose(before[mask], changed[mask])  # present features are read


def test_all_present_equals_no_presence_argument():
    model = small_model("binary")
    batch = make_batch([3, 5])
    with torch.no_grad():
        torch.testing.assert_close(model(*batch), model(*batch, torch.ones(2, 5, 3, dtype=torch.bool)))


def test_a_modality_absent_everywhere_removes_its_stream():
    """With no visual anywhere, the output does not depend on the visual cell's weights."""
    model = small_model("regression")
    batch = make_batch([4, 2], seed=1)
    present = torch.ones(2, 4, 3, dtype=torch.bool)
    present[..., 2] = False
    with torch.no_grad():
        before = model(*batch, present)
        for p in model.forward_cells[2].parameters():
            p.add_(torch.randn_like(p))
        after = model(*batch, present)
    torch.testing.assert_close(before[batch[-1]], after[batch[-1]], rtol=0, atol=1e-6)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_dropout_placement_matches_the_equations(task, monkeypatch):
    """In training mode, with dropout replaced by a fixed mask (a function of the feature index only, so the
    fast model's stacked layout and the reference's per-cell one drop the same units), the outputs agree: the
    dropouts sit where the equations put them."""
    import model.network as network

    def fixed_mask(x, p, training=True):
        if p <= 0 or not training:
            return x
        keep = (torch.arange(x.shape[-1], device=x.device) % 3 != 0).to(x.dtype)
        return x * keep / (1 - p)

    model = small_model(task).train()
    batch = make_batch([5, 3, 4], parties=2, seed=11)
    monkeypatch.setattr(network, "dropout_", fixed_mask)
    with torch.no_grad():
        fast = model(*batch)
        ref = reference_forward(model, *batch, drop=fixed_mask)
        plain = reference_forward(model, *batch)  # without the dropouts: visibly different
    mask = batch[-1]
    torch.testing.assert_close(fast[mask], ref[mask], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(fast[mask], plain[mask], atol=1e-3)
