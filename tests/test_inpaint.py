import torch

from tabgen.diffusion.inpaint import heun_inpaint
from tabgen.diffusion.sampler import sigma_schedule

RHO = 0.8
COV = torch.tensor([[1.0, RHO], [RHO, 1.0]])
GIVEN = 1.5


def correlated_denoiser(x, sigma):
    """The exact denoiser for data ~ N(0, Σ): E[x0 | x0 + σn = x] = Σ(Σ + σ²I)⁻¹x."""
    a = COV + sigma.reshape(-1, 1, 1) ** 2 * torch.eye(2)
    return (COV @ torch.linalg.solve(a, x[:, :, None]))[:, :, 0]


def inpaint(resamples, n=4000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 2, generator=generator)
    known = torch.tensor([GIVEN, 0.0])
    mask = torch.tensor([True, False])
    return heun_inpaint(correlated_denoiser, noise, sigma_schedule(20, 0.002, 80.0, 7.0), known, mask,
                        resamples=resamples, resample_band=(0.02, 80.0), generator=generator)


def test_known_coordinates_come_out_exactly():
    assert torch.equal(inpaint(0, n=100)[:, 0], torch.full((100,), GIVEN))


def test_resampling_gives_the_conditional_distribution():
    # x1 | x0 = a ~ N(ρa, 1 − ρ²): mean 1.2, sd 0.6. Replacement alone barely moves x1 toward it.
    x1 = inpaint(39)[:, 1]
    assert abs(float(x1.mean()) - RHO * GIVEN) < 0.08
    assert abs(float(x1.std()) - (1 - RHO**2) ** 0.5) < 0.05
    assert float(inpaint(0)[:, 1].mean()) < 0.6


def test_nothing_known_is_plain_sampling_and_is_reproducible():
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(20_000, 2, generator=generator)
    x = heun_inpaint(correlated_denoiser, noise, sigma_schedule(50, 0.002, 80.0, 7.0), torch.zeros(2),
                     torch.tensor([False, False]), generator=generator)
    assert torch.allclose(torch.cov(x.T), COV, atol=0.05)
    assert torch.equal(inpaint(3, n=50, seed=7), inpaint(3, n=50, seed=7))


def test_per_row_masks():
    generator = torch.Generator().manual_seed(0)
    known = torch.tensor([[GIVEN, 0.0], [0.0, -GIVEN]])
    mask = torch.tensor([[True, False], [False, True]])
    x = heun_inpaint(correlated_denoiser, torch.randn(2, 2, generator=generator), sigma_schedule(10, 0.002, 80.0, 7.0),
                     known, mask, resamples=2, generator=generator)
    assert x[0, 0] == GIVEN and x[1, 1] == -GIVEN


def test_whitened_coordinates_are_conditioned_on_the_known_combination():
    # Data s ~ N(0, Σ) seen whitened, z = s Σ^(-1/2) ~ N(0, I): s0 = a fixes a combination of z, and the
    # rows must still follow s1 | s0 = a ~ N(ρa, 1 − ρ²).
    eigenvalues, vectors = torch.linalg.eigh(COV)
    unmix = (vectors * eigenvalues.sqrt()) @ vectors.T
    known = torch.tensor([GIVEN, 0.0]) @ torch.linalg.inv(unmix)
    generator = torch.Generator().manual_seed(0)
    z = heun_inpaint(lambda x, sigma: x / (1 + sigma.reshape(-1, 1) ** 2), torch.randn(4000, 2, generator=generator),
                     sigma_schedule(20, 0.002, 80.0, 7.0), known, torch.tensor([True, False]), resamples=39,
                     resample_band=(0.02, 80.0), generator=generator, unmix=unmix)
    s = z @ unmix
    assert torch.allclose(s[:, 0], torch.full((4000,), GIVEN), atol=1e-5)
    assert abs(float(s[:, 1].mean()) - RHO * GIVEN) < 0.08
    assert abs(float(s[:, 1].std()) - (1 - RHO**2) ** 0.5) < 0.05
