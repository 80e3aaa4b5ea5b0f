import numpy as np
import pandas as pd
import torch

from tabgen import Synthesizer
from tabgen.codec import LatentScaling
from tabgen.diffusion.inpaint import known_replacement
from tabgen.whitening import correlated_groups, grouped_whitening, zca_whitening

from conftest import fast_config


def test_groups_link_strong_correlations_through_chains_and_leave_weaker_ones():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5000, generator=g)
    b = a + 0.3 * torch.randn(5000, generator=g)  # r(a, b) ≈ 0.96
    c = b + 0.3 * torch.randn(5000, generator=g)  # r(b, c) ≈ 0.96: a and c linked through b
    d = a + 1.0 * torch.randn(5000, generator=g)  # r(a, d) ≈ 0.71: a distractor
    e = torch.randn(5000, generator=g)
    assert correlated_groups(torch.stack([a, d, b, e, c], 1), 0.85) == [[0, 2, 4]]
    assert correlated_groups(torch.stack([a, e], 1), 0.85) == []


def test_zca_whitening_whitens_stays_nearest_to_itself_and_inverts():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(20_000, 3, generator=g) @ torch.tensor([[1.0, 0.9, 0.8], [0.0, 0.4, 0.3], [0.0, 0.0, 0.2]])
    w, w_inv = zca_whitening(z, floor=1e-8)
    white = (z - z.mean(0)).double() @ w
    assert torch.allclose(torch.cov(white.T), torch.eye(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(w @ w_inv, torch.eye(3, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(w, w.T)  # symmetric: ZCA, the whitening that moves each dimension least


def test_the_floor_bounds_how_much_a_thin_direction_is_amplified():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(4000, generator=g)
    w, _ = zca_whitening(torch.stack([a, a + 1e-3 * torch.randn(4000, generator=g)], 1), floor=1e-2)
    singular = torch.linalg.svdvals(w)
    assert float(singular.max() / singular.min()) <= 10 + 1e-6


def test_scaling_whitens_only_its_groups_and_round_trips():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4000, generator=g)
    latents = torch.stack([3 + 2 * a, 3 + 2 * a + 0.5 * torch.randn(4000, generator=g), torch.randn(4000, generator=g) * 5], 1)
    scaling = LatentScaling.fit(latents, 0.5, [[0, 1]])
    z = scaling.standardise(latents)
    assert torch.allclose(torch.cov(z.T)[:2, :2], 0.25 * torch.eye(2), atol=1e-4) and torch.cov(z.T)[2, 2] - 0.25 < 1e-4
    assert scaling.mix[2, 2] == 1 and scaling.mix[0, 2] == 0
    assert torch.allclose(scaling.unstandardise(z), latents, atol=1e-4)
    assert torch.equal(z.min(0).values, scaling.low)
    assert LatentScaling.fit(latents, 0.5).mix is None and grouped_whitening(z, [])[0].equal(torch.eye(3))


def test_known_replacement_fixes_the_known_combinations_and_moves_least():
    g = torch.Generator().manual_seed(3)
    unmix = torch.eye(4)
    unmix[:3, :3] = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.5], [0.2, 0.5, 1.0]])
    mask = torch.tensor([[True, False, False, True], [False, True, True, False]])
    x, target = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
    kept = known_replacement(mask, unmix)(x, target)
    assert torch.allclose((kept @ unmix)[mask], (target @ unmix)[mask], atol=1e-5)
    assert torch.allclose((kept - x)[0, 3:], (target - x)[0, 3:])  # a dimension outside the group: replaced
    # With no mixing it is replacement, coordinate by coordinate.
    assert torch.allclose(known_replacement(mask, torch.eye(4))(x, target), torch.where(mask, target, x), atol=1e-6)


def bills_frame(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    bill = rng.gamma(2.0, 20_000, n)
    bills = {f"bill{i}": (bill := bill * rng.normal(1.0, 0.05, n)).round() for i in range(1, 4)}
    return pd.DataFrame({**bills, "age": rng.integers(20, 70, n), "kind": rng.choice(["a", "b"], n)})


def test_a_fit_whitens_correlated_columns_saves_them_and_keeps_given_cells(tmp_path):
    df = bills_frame()
    on = fast_config()
    on.diffusion.whiten_correlation = 0.85
    syn = Synthesizer(config=on, progress=False).fit(df)
    scaling = syn.model_.codec.scaling
    assert scaling.mix is not None
    d = syn.model_.codec.vae.d_token
    assert torch.equal(scaling.mix[3 * d:, 3 * d:], torch.eye(len(scaling.mix) - 3 * d))  # age, kind: alone
    fake = syn.sample(50, given={"bill2": 12_345.0}, seed=0)
    assert (fake["bill2"] == 12_345.0).all()
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen")
    assert loaded.sample(20, seed=4).equals(syn.sample(20, seed=4))
    assert Synthesizer(config=fast_config(), progress=False).fit(df).model_.codec.scaling.mix is None  # the default
