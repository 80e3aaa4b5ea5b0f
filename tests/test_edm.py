import math

import torch
from torch import nn

from tabgen.diffusion.denoiser import MLPDenoiser, NoiseEmbedding
from tabgen.diffusion.edm import EDMPrecond, bounded_denoiser, c_in, c_noise, c_out, c_skip, edm_loss, loss_weight, sample_sigma

SD = 0.5


class Zero(nn.Module):
    def forward(self, x, c_noise):
        return torch.zeros_like(x)


def test_preconditioning_matches_the_paper():
    sigma = torch.tensor([0.1, 1.0, 10.0])
    assert torch.allclose(c_skip(sigma, SD), SD**2 / (sigma**2 + SD**2))
    assert torch.allclose(c_out(sigma, SD), sigma * SD / torch.sqrt(sigma**2 + SD**2))
    assert torch.allclose(c_in(sigma, SD), 1 / torch.sqrt(sigma**2 + SD**2))
    assert torch.allclose(c_noise(sigma), torch.log(sigma) / 4)


def test_effective_training_target_has_unit_variance():
    # EDM's design rule: c_in·(x + n) and the target (x − c_skip·(x + n))/c_out both have unit variance.
    sigma = torch.tensor(2.0)
    assert math.isclose(float(c_in(sigma, SD) ** 2 * (SD**2 + sigma**2)), 1.0, rel_tol=1e-6)
    target_var = ((1 - c_skip(sigma, SD)) ** 2 * SD**2 + c_skip(sigma, SD) ** 2 * sigma**2) / c_out(sigma, SD) ** 2
    assert math.isclose(float(target_var), 1.0, rel_tol=1e-6)


def test_denoiser_is_identity_as_sigma_goes_to_zero():
    torch.manual_seed(0)
    D = EDMPrecond(MLPDenoiser(6, 32), SD)
    x = torch.randn(8, 6)
    out = D(x, torch.full((8,), 1e-6))
    assert torch.allclose(out, x, atol=1e-5)


def test_denoiser_keeps_shape_and_accepts_scalar_sigma():
    D = EDMPrecond(MLPDenoiser(5, 16), SD)
    x = torch.randn(4, 5)
    assert D(x, torch.tensor(3.0)).shape == x.shape


def test_loss_weight_formula():
    sigma = torch.tensor([0.01, 0.5, 80.0])
    assert torch.allclose(loss_weight(sigma, SD), (sigma**2 + SD**2) / (sigma * SD) ** 2)


def test_zero_network_has_unit_weighted_loss_at_every_noise_level():
    torch.manual_seed(0)
    D = EDMPrecond(Zero(), SD)
    x = torch.randn(200_000, 1) * SD
    for s in (0.01, 0.3, 5.0, 80.0):
        sigma = torch.full((len(x),), s)
        loss = edm_loss(D, x, sigma, torch.randn_like(x), SD)
        assert abs(float(loss) - 1) < 0.02, (s, float(loss))


def test_weighted_loss_of_fresh_network_is_about_one():
    torch.manual_seed(0)
    D = EDMPrecond(MLPDenoiser(8, 64), SD)
    x = torch.randn(4096, 8) * SD
    sigma = sample_sigma(len(x), -1.2, 1.2)
    with torch.no_grad():
        loss = edm_loss(D, x, sigma, torch.randn_like(x), SD)
    assert 0.5 < float(loss) < 2.0


def test_sigma_is_log_normal():
    torch.manual_seed(0)
    log_sigma = sample_sigma(200_000, -1.2, 1.2).log()
    assert abs(float(log_sigma.mean()) + 1.2) < 0.02
    assert abs(float(log_sigma.std()) - 1.2) < 0.02


def test_noise_embedding_distinguishes_noise_levels():
    emb = NoiseEmbedding(16)(torch.tensor([-1.0, 0.0, 1.0]))
    assert emb.shape == (3, 16)
    assert not torch.allclose(emb[0], emb[2])


def test_a_shared_noise_level_is_embedded_once_with_the_same_result():
    torch.manual_seed(0)
    net = MLPDenoiser(6, 32)
    x = torch.randn(5, 6)
    shared = net(x, torch.full((5,), 0.3))
    one_by_one = torch.cat([net(x[i : i + 1], torch.tensor([0.3])) for i in range(5)])
    assert torch.allclose(shared, one_by_one, atol=1e-6)


def test_bounded_denoiser_holds_the_clean_estimate_in_the_training_range():
    from tabgen.diffusion.sampler import heun_sample, sigma_schedule

    low, high = torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 3.0])
    steep = lambda x, sigma: 50 * x  # a network extrapolating far outside what it saw  # noqa: E731
    D = bounded_denoiser(steep, low, high)
    x = torch.tensor([[0.01, -0.02], [5.0, -9.0]])
    assert torch.equal(D(x, torch.ones(2)), torch.tensor([[0.5, -1.0], [1.0, -2.0]]))
    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    sigmas = sigma_schedule(20, 0.002, 80.0, 7.0)
    assert not (heun_sample(steep, noise, sigmas).abs() < 1e6).all()
    bounded = heun_sample(D, noise, sigmas)
    assert ((bounded >= low - 1e-4) & (bounded <= high + 1e-4)).all()
