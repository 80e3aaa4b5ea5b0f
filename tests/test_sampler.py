import torch

from tabgen.diffusion.sampler import heun_sample, heun_step, sigma_schedule

SD = 0.5


def gaussian_denoiser(x, sigma):
    """The exact denoiser for data ~ N(0, σ_d²): E[x | x + n] = y·σ_d²/(σ² + σ_d²)."""
    sigma = sigma.reshape(-1, 1)
    return x * SD**2 / (sigma**2 + SD**2)


def test_schedule_hits_both_ends_then_zero_and_is_monotone():
    s = sigma_schedule(50, 0.002, 80.0, 7.0)
    assert len(s) == 51
    assert torch.isclose(s[0], torch.tensor(80.0, dtype=s.dtype))
    assert torch.isclose(s[-2], torch.tensor(0.002, dtype=s.dtype))
    assert s[-1] == 0
    assert torch.all(s[1:] < s[:-1])


def test_schedule_formula():
    n, lo, hi, rho = 5, 0.01, 10.0, 7.0
    s = sigma_schedule(n, lo, hi, rho)
    for i in range(n):
        expected = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
        assert abs(float(s[i]) - expected) < 1e-9


def test_heun_step_is_euler_on_the_last_step():
    x = torch.randn(10, 3)
    out = heun_step(gaussian_denoiser, x, 0.5, 0.0)
    assert torch.allclose(out, gaussian_denoiser(x, torch.full((10,), 0.5)))


def test_heun_step_is_exact_for_a_linear_ode_to_second_order():
    # For the Gaussian denoiser dx/dσ = x·σ/(σ² + σ_d²), whose solution is x·√((σ'² + σ_d²)/(σ² + σ_d²)).
    x = torch.ones(1, 1)
    s, s_next = 1.0, 0.9
    exact = (s_next**2 + SD**2) ** 0.5 / (s**2 + SD**2) ** 0.5
    assert abs(float(heun_step(gaussian_denoiser, x, s, s_next)) - exact) < 1e-4


def test_heun_with_exact_gaussian_denoiser_recovers_the_data_distribution():
    torch.manual_seed(0)
    noise = torch.randn(100_000, 2)
    x = heun_sample(gaussian_denoiser, noise, sigma_schedule(50, 0.002, 80.0, 7.0))
    assert abs(float(x.mean())) < 0.01
    assert abs(float(x.std()) - SD) < 0.01
