"""The sampler's start with the data's spread in it: the latents' widest directions and the prior they shape."""

import pandas as pd
import pytest
import torch

from tabgen import Synthesizer
from tabgen.diffusion.edm import EDMProcess
from tabgen.diffusion.prior import prior_noise
from tabgen.diffusion.process import ode_sample
from tabgen.diffusion.sampler import sigma_schedule
from tabgen.latent_axes import principal_axes

from conftest import fast_config


def _correlated(variances: list[float], dims: int, rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of N(0, Σ), Σ with ``variances`` along the first columns of a random rotation and 1 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    rotation = torch.linalg.qr(torch.randn(dims, dims, generator=g, dtype=torch.float64))[0]
    spread = torch.ones(dims, dtype=torch.float64)
    spread[: len(variances)] = torch.tensor(variances, dtype=torch.float64)
    return torch.randn(rows, dims, generator=g, dtype=torch.float64) * spread.sqrt() @ rotation.T, rotation


def test_principal_axes_find_the_widest_directions_without_touching_torchs_random_stream():
    z, rotation = _correlated([30.0, 10.0, 5.0], dims=40, rows=40_000)
    state = torch.get_rng_state()
    axes, variances, rest = principal_axes(z.float(), k=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert variances.tolist() == pytest.approx([30.0, 10.0, 5.0], rel=0.03)
    assert (axes.double().T @ rotation[:, :3]).abs().diagonal().min() > 0.99
    assert float(rest) == pytest.approx(1.0, rel=0.03)
    assert torch.equal(principal_axes(z.float(), k=3)[0], axes)  # the same directions every time
    assert principal_axes(z.float()[:5, :2])[0].shape == (2, 2)  # no more directions than dimensions


def test_the_shaped_noise_times_sigma_has_the_noised_datas_covariance():
    dims, sigma = 6, 10.0
    axes = torch.linalg.qr(torch.randn(dims, 2, generator=torch.Generator().manual_seed(1)))[0]
    variances, rest = torch.tensor([32.0, 4.0]), 0.5
    # The map is linear: its rows are the images of the unit vectors.
    m = prior_noise(torch.eye(dims), sigma, axes, variances, rest).double()
    data = axes.double() @ torch.diag(variances.double()) @ axes.double().T + rest * (torch.eye(dims) - axes @ axes.T).double()
    assert torch.allclose(sigma**2 * m.T @ m, sigma**2 * torch.eye(dims, dtype=torch.float64) + data, atol=1e-4)


def test_started_at_sigma_10_the_sampler_keeps_a_wide_direction_only_with_the_shaped_noise():
    # Data N(0, Σ) with one direction of variance 32, as default's bills; the exact denoiser Σ(Σ + σ²I)⁻¹x.
    _, rotation = _correlated([32.0], dims=6, rows=2)
    sigma_data = rotation @ torch.diag(torch.tensor([32.0, 1, 1, 1, 1, 1], dtype=torch.float64)) @ rotation.T

    def exact(x, sigma):  # every row is at one noise level
        s = float(sigma.flatten()[0])
        return x @ torch.linalg.solve(sigma_data + s**2 * torch.eye(6, dtype=torch.float64), sigma_data)

    axes, variances = rotation[:, :1], torch.tensor([32.0], dtype=torch.float64)
    noise = torch.randn(4_000, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    times = sigma_schedule(14, 0.002, 10.0, 7.0).tolist()
    widest = {name: float((ode_sample(exact, start, times, EDMProcess()) @ axes).var())
              for name, start in (("plain", noise), ("shaped", prior_noise(noise, 10.0, axes, variances, 1.0)))}
    assert widest["shaped"] == pytest.approx(32.0, rel=0.06)
    assert widest["plain"] == pytest.approx(32.0 * 100 / 132, rel=0.06)  # the start's missing spread, carried through


def test_a_fit_keeps_its_latents_widest_directions_in_the_model_file_and_samples_from_a_lower_start(tmp_path):
    rng = torch.Generator().manual_seed(0)
    base = torch.randn(300, generator=rng)
    frame = pd.DataFrame({f"bill{i}": (base * 1000 + torch.randn(300, generator=rng) * 50).numpy() for i in range(4)})
    config = fast_config()
    config.sampler.sigma_max = 10.0  # the lower start it makes right, as a user sets it
    syn = Synthesizer(config=config, progress=False).fit(frame)
    assert len(syn.sample(50)) == 50
    scaling = syn.codec_.scaling
    assert scaling.axes is not None and scaling.axes.shape[1] == len(scaling.axis_variances)
    assert float(scaling.axis_variances[0]) > 2 * float(scaling.rest_variance)  # the shared direction is the widest
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False).codec_.scaling
    assert torch.equal(loaded.axes, scaling.axes) and torch.equal(loaded.rest_variance, scaling.rest_variance)
