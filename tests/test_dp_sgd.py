"""DP-SGD: each row's gradient clipped, noise of the stated scale, the accountant's ε, and private fits."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tabgen import Synthesizer
from tabgen.config import PrivacyConfig
from tabgen.dp_sgd import (
    COUNTS_SHARE,
    Phase,
    PrivateStep,
    clip_factors,
    counts_noise,
    noise_multiplier,
    poisson_batches,
    spent_epsilon,
)
from tabgen.errors import TabgenError

from conftest import fast_config


class Scaled(nn.Module):
    """A linear layer and a parameter of its own: the per-row path that is not ghost clipping's."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.tensor([1.5, -0.5]))

    def forward(self, x):
        return self.linear(x) * self.scale


def _mlp():
    return nn.Sequential(nn.Linear(3, 8), nn.SiLU(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 2))


def _clipped_mean_by_loop(network, x, y, max_norm, expected):
    """The DP-SGD gradient without noise, one row at a time."""
    total = [torch.zeros_like(p) for p in network.parameters()]
    for i in range(len(x)):
        grads = torch.autograd.grad(((network(x[i:i + 1]) - y[i:i + 1]) ** 2).mean(), list(network.parameters()))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        factor = min(1.0, max_norm / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads)]
    return [t / expected for t in total]


@pytest.mark.parametrize("make, ghost", [(_mlp, True), (Scaled, False)])
def test_each_rows_gradient_is_clipped_before_the_sum(make, ghost):
    torch.manual_seed(0)
    network, x = make(), torch.randn(37, 3)
    y = torch.randn(37, 2) * 5  # large errors: most rows' gradients are clipped
    step = PrivateStep(network, lambda a, b: ((network(a) - b) ** 2).mean(), noise_multiplier=0.0, max_grad_norm=0.5,
                       expected_batch=40)
    assert step.ghost is ghost
    loss = step(x, y)
    expected = _clipped_mean_by_loop(network, x, y, 0.5, 40)
    for p, e in zip(network.parameters(), expected):
        torch.testing.assert_close(p.grad, e, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        assert float(loss) == pytest.approx(float(((network(x) - y) ** 2).mean()), rel=1e-4)


def test_the_noise_on_the_mean_has_std_noise_multiplier_times_norm_over_the_batch():
    torch.manual_seed(0)
    layer = nn.Linear(200, 200)
    step = PrivateStep(layer, lambda a: layer(a).sum() * 0, noise_multiplier=3.0, max_grad_norm=0.5, expected_batch=10)
    step(torch.randn(4, 200))
    assert float(layer.weight.grad.std()) == pytest.approx(3.0 * 0.5 / 10, rel=0.02)


def test_an_empty_batch_gets_noise_alone():
    layer = nn.Linear(4, 4)
    step = PrivateStep(layer, lambda a: layer(a).mean(), noise_multiplier=1.0, max_grad_norm=1.0, expected_batch=8)
    step(torch.empty(0, 4))
    assert layer.weight.grad.abs().sum() > 0


def test_clip_factors_bring_every_norm_within_the_bound():
    squared = torch.tensor([0.0, 0.25, 4.0, 100.0])
    norms = squared.sqrt() * clip_factors(squared, 1.0)
    assert bool((norms <= 1.0).all())
    assert clip_factors(squared, 1.0)[:2].tolist() == [1.0, 1.0]


def test_poisson_batches_hold_each_row_with_the_rate():
    torch.manual_seed(0)
    rows = torch.arange(1000)
    batches = poisson_batches((rows,), 0.1)
    sizes = [len(next(batches)[0]) for _ in range(200)]
    assert np.mean(sizes) == pytest.approx(100, rel=0.05)
    assert np.std(sizes) > 3  # not a fixed size: the accountant's bound assumes independent draws


def test_the_noise_chosen_spends_the_budget_and_no_more():
    phases = [Phase(0.03, 300), Phase(0.06, 4000)]
    for epsilon in (1.0, 4.0, 10.0):
        sigma = noise_multiplier(epsilon, 1e-5, phases)
        assert spent_epsilon(sigma, phases, 1e-5) <= epsilon
        assert spent_epsilon(sigma * 0.99, phases, 1e-5) > epsilon
    assert spent_epsilon(2.0, [Phase(0.03, 0)], 1e-5) == 0.0
    # Composition: two phases spend more than either alone.
    assert spent_epsilon(2.0, phases, 1e-5) > max(spent_epsilon(2.0, [p], 1e-5) for p in phases)


def test_an_unreachable_budget_is_refused():
    with pytest.raises(TabgenError, match="cannot be met"):
        noise_multiplier(1e-4, 1e-5, [Phase(1.0, 10**6)])


def _table(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    code = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({"x": rng.normal(size=n), "code": code, "label": pd.Series(code).map({"a": "A", "b": "B", "c": "C"}),
                         "start": rng.integers(0, 100, n)}).assign(end=lambda d: d["start"] + rng.integers(0, 9, n))


def _private_config():
    return fast_config(privacy=PrivacyConfig(vae_steps=40, vae_batch_size=256, diffusion_steps=60, diffusion_batch_size=256))


def test_a_private_fit_reports_the_epsilon_it_spent_and_keeps_it_in_the_file(tmp_path):
    syn = Synthesizer(config=_private_config(), dp_epsilon=3.0, progress=False).fit(_table())
    spent = syn.privacy_
    assert spent.epsilon <= 3.0 and spent.epsilon == pytest.approx(3.0, rel=0.05)
    assert spent.delta == 1e-5 and spent.noise_multiplier > 0 and spent.counts_noise > 0
    assert "ε = 3" in str(spent) and "calibration's counts" in str(spent)
    # Every row trains, for the planned steps, with the last weights: no validation rows to select with.
    assert syn.vae_result_.steps == 40 and syn.diffusion_result_.stopped_by == "max steps"
    assert syn.config_.validation_fraction == 0
    # The calibration read the table only as noisy counts: no map of a number given a class, which would read its scores.
    calibration = syn.codec_.calibration
    assert calibration is not None and all(c is None for c in calibration.conditional_scores)
    # Pairs and rules found in the rows are not private: none are found. Nor is the latents' covariance:
    # no widest directions are kept (tabgen.latent_axes).
    assert len(syn.rules_) == 0 and not any(c.derived_from for c in syn.schema_.columns)
    assert syn.codec_.scaling.axes is None
    assert len(syn.sample(50)) == 50
    syn.save(tmp_path / "m.tabgen")
    assert Synthesizer.load(tmp_path / "m.tabgen").privacy_ == spent
    assert Synthesizer(config=fast_config(), progress=False).fit(_table(200)).privacy_ is None


def test_a_private_fit_without_calibration_spends_epsilon_on_the_trainings_alone(tmp_path):
    config = _private_config()
    config.sampler.calibration_rows = 0
    syn = Synthesizer(config=config, dp_epsilon=3.0, progress=False).fit(_table())
    assert syn.codec_.calibration is None and syn.privacy_.counts_noise is None
    assert syn.privacy_.epsilon == pytest.approx(3.0, rel=0.05) and "counts" not in str(syn.privacy_)
    syn.save(tmp_path / "m.tabgen")
    assert Synthesizer.load(tmp_path / "m.tabgen").privacy_ == syn.privacy_


def test_the_counts_alone_spend_their_share_of_epsilon_and_every_phase_together_epsilon():
    delta = 1e-5
    counts = counts_noise(4.0, delta)
    assert spent_epsilon(123.0, [Phase(1.0, 1, counts)], delta) == pytest.approx(COUNTS_SHARE * 4.0, rel=0.01)
    phases = [Phase(0.05, 300), Phase(1.0, 1, counts)]
    sigma = noise_multiplier(4.0, delta, phases)
    assert spent_epsilon(sigma, phases, delta) == pytest.approx(4.0, rel=0.01)
    # The counts' share leaves the trainings less: they need more noise than with all of ε.
    assert sigma > noise_multiplier(4.0, delta, phases[:1])


def test_declared_rules_are_kept_in_a_private_fit():
    syn = Synthesizer(config=_private_config(), dp_epsilon=8.0, rules=["end >= start"], progress=False).fit(_table())
    rows = syn.sample(300)
    assert len(syn.rules_) == 1 and bool((rows["end"] >= rows["start"]).all())


@pytest.mark.filterwarnings("ignore:the time budget allowed only")
def test_a_time_budget_ends_a_private_fit_before_its_plan_never_after():
    syn = Synthesizer(config=_private_config(), dp_epsilon=2.0, time_budget=3, progress=False).fit(_table())
    assert syn.diffusion_result_.steps <= 60
    assert syn.privacy_.epsilon <= 2.0


@pytest.mark.parametrize("epsilon", [0, -1, float("inf"), "4"])
def test_a_bad_epsilon_is_refused(epsilon):
    with pytest.raises(TabgenError, match="epsilon"):
        Synthesizer(config=_private_config(), dp_epsilon=epsilon, progress=False).fit(_table(100))


def test_delta_must_be_a_probability():
    with pytest.raises(TabgenError, match="delta"):
        PrivacyConfig(epsilon=1.0, delta=1.5)
    assert math.isclose(PrivacyConfig(epsilon=1.0, delta=1e-6).delta, 1e-6)


def test_the_cli_fits_privately_and_says_what_it_spent(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tabgen.cli import main

    monkeypatch.chdir(tmp_path)
    _table(300).to_csv("t.csv", index=False)
    r = CliRunner().invoke(main, ["fit", "t.csv", "--dp-epsilon", "4", "--time-budget", "3s", "-q"])
    assert r.exit_code == 0, r.output
    assert "Privacy: (ε = " in r.output and "docs/privacy.md" in r.output
    assert Synthesizer.load("t.tabgen").privacy_.epsilon <= 4
    r = CliRunner().invoke(main, ["fit", "t.csv", "-o", "z.tabgen", "--dp-epsilon", "0", "-q"])
    assert r.exit_code == 2 and "epsilon must be positive" in r.output
