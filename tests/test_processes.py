"""The forward processes (EDM, VP, VE and DDPM in EDM's form) and the solvers: each property the equations promise."""

import math

import pandas as pd
import pytest
import torch

from tabgen import Synthesizer
from tabgen.config import SamplerConfig, SynthesizerConfig
from tabgen.diffusion.ddpm import DDPMProcess
from tabgen.diffusion.edm import EDMPrecond, EDMProcess
from tabgen.diffusion.inpaint import heun_inpaint
from tabgen.diffusion.multistep import dpm_solver_2m
from tabgen.diffusion.process import ode_sample
from tabgen.diffusion.sampler import heun_sample, sigma_schedule
from tabgen.diffusion.solvers import resolved_solver, solve
from tabgen.diffusion.stochastic import churn_gamma, edm_stochastic_sample
from tabgen.diffusion.ve import VEProcess
from tabgen.diffusion.vp import VPProcess

from conftest import fast_config

SIGMA_DATA = 0.5
PROCESSES = [EDMProcess(SIGMA_DATA), VPProcess(), VEProcess(), DDPMProcess()]
IDS = [p.name for p in PROCESSES]


def gaussian_denoiser(x, sigma):
    """The exact E[x₀ | x₀ + σ·n] for data N(0, σ_d²)."""
    sigma = sigma.reshape(-1, 1)
    return SIGMA_DATA**2 / (SIGMA_DATA**2 + sigma**2) * x


class Zero(torch.nn.Module):
    def forward(self, x, c_noise):
        return torch.zeros_like(x)


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_at_the_last_sampler_time_the_marginal_is_the_data(process):
    y, noise = torch.randn(100, 3), torch.randn(100, 3)
    t = process.time_steps(20, SamplerConfig())[-1]
    assert process.sigma(t) == 0 and process.scale(t) == 1
    assert torch.equal(process.noised(y, t, noise), y)


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_at_the_first_sampler_time_the_marginal_is_the_prior(process):
    t0 = process.time_steps(20, SamplerConfig())[0]
    assert process.sigma(t0) >= 80  # the data's part is under 1/80 of the noise's (lower, see test_prior.py)
    y, noise = SIGMA_DATA * torch.randn(200_000, 1), torch.randn(200_000, 1)
    noised = process.noised(y, t0, noise)
    assert float(noised.std()) == pytest.approx(float(process.prior(noise, t0).std()), rel=1e-4)


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_the_zero_network_has_loss_one_at_every_noise_level(process):
    D = EDMPrecond(Zero(), SIGMA_DATA, process)
    x = SIGMA_DATA * torch.randn(50_000, 2)
    for sigma in (0.01, 0.5, 5.0, 80.0):
        loss = process.loss(D, x, torch.full((len(x),), sigma), torch.randn_like(x))
        assert float(loss) == pytest.approx(1.0, rel=0.03)
    assert 0.5 < float(process.loss(D, x, process.training_sigma(len(x)), torch.randn_like(x))) < 2


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_the_sampler_with_the_exact_denoiser_recovers_the_data_distribution(process):
    # 200 steps: at 20, Heun in VE's t = σ² gives half the std (docs/processes.md), DDIM 13 % less.
    noise = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = ode_sample(gaussian_denoiser, noise, process.time_steps(200, SamplerConfig()), process)
    assert float(x.std()) == pytest.approx(SIGMA_DATA, rel=0.03)
    assert abs(float(x.mean())) < 0.02


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
@pytest.mark.parametrize("solver, levels, tolerance", [("dpm2m", 50, 0.07), ("ancestral", 200, 0.04), ("heun-churn", 50, 0.04)])
def test_every_solver_with_the_exact_denoiser_recovers_the_data_distribution(process, solver, levels, tolerance):
    # DPM-Solver steps in λ = −ln σ, where VP's and DDPM's grids, even in t, are coarse at the ends: 0.53 at 50.
    config = SamplerConfig(solver="heun", s_churn=40) if solver == "heun-churn" else SamplerConfig(solver=solver)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = solve(gaussian_denoiser, noise, process.time_steps(levels, config), process, config, generator)
    assert float(x.std()) == pytest.approx(SIGMA_DATA, rel=tolerance)
    assert abs(float(x.mean())) < 0.02


def test_edm_stochastic_sampler_without_churn_is_the_deterministic_one():
    noise = torch.randn(100, 2, dtype=torch.float64)
    sigmas = sigma_schedule(10, 0.002, 80, 7).tolist()
    assert torch.allclose(edm_stochastic_sample(gaussian_denoiser, noise * 80, sigmas, churn=0.0),
                          heun_sample(gaussian_denoiser, noise, sigma_schedule(10, 0.002, 80, 7)))
    assert churn_gamma(1.0, 40, 20, 0.05, 50) == pytest.approx(math.sqrt(2) - 1)  # capped
    assert churn_gamma(60.0, 40, 20, 0.05, 50) == 0  # outside [S_tmin, S_tmax]


def test_dpm_solver_is_exact_for_a_constant_denoiser_and_second_order_for_a_varying_one():
    # D ≡ c: every step's closed form is exact, and the ODE ends at c.
    y0 = torch.randn(10, 2, dtype=torch.float64) * 80
    sigmas = sigma_schedule(5, 0.002, 80, 7).tolist()
    assert torch.allclose(dpm_solver_2m(lambda y, s: torch.full_like(y, 0.3), y0, sigmas), torch.full_like(y0, 0.3))
    # Gaussian data: y(σ) ∝ √(σ² + σ_d²) exactly. Doubling the steps cuts the error about fourfold.
    exact = y0 * SIGMA_DATA / math.sqrt(80**2 + SIGMA_DATA**2)
    errors = [float((dpm_solver_2m(gaussian_denoiser, y0, sigma_schedule(n, 0.002, 80, 7).tolist()) - exact).abs().max())
              for n in (10, 20)]
    assert errors[1] < errors[0] / 3


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_inpainting_keeps_the_known_part_and_samples_the_rest(process):
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(5000, 2, generator=generator, dtype=torch.float64)
    known = torch.tensor([0.7, 0.0], dtype=torch.float64)
    x = heun_inpaint(gaussian_denoiser, noise, process.time_steps(200, SamplerConfig()), known,
                     torch.tensor([True, False]), process, resamples=2, resample_band=(0.3, 20.0), generator=generator)
    assert torch.equal(x[:, 0], torch.full((5000,), 0.7, dtype=torch.float64))
    assert float(x[:, 1].std()) == pytest.approx(SIGMA_DATA, rel=0.05)  # independent of the known one


@pytest.mark.parametrize("process", [VPProcess(), VEProcess()], ids=["vp", "ve"])
def test_the_schedule_derivatives_match_finite_differences(process):
    for t in (0.01, 0.3, 0.9):
        h = 1e-6
        assert process.sigma_dot(t) == pytest.approx((process.sigma(t + h) - process.sigma(t - h)) / (2 * h), rel=1e-4)
        assert process.scale_dot(t) == pytest.approx((process.scale(t + h) - process.scale(t - h)) / (2 * h), rel=1e-4,
                                                     abs=1e-9)


def test_vp_time_of_a_noise_level_inverts_its_schedule_and_trains_on_its_range():
    vp = VPProcess()
    t = torch.tensor([1e-3, 0.1, 0.5, 1.0], dtype=torch.float64)
    sigma = torch.tensor([vp.sigma(float(v)) for v in t], dtype=torch.float64)
    assert torch.allclose(vp.sigma_inv(sigma), t, rtol=1e-9)
    assert vp.sigma(1.0) * vp.scale(1.0) == pytest.approx(1.0, rel=1e-2)  # VP's prior: N(0, 1)
    drawn = vp.training_sigma(10_000)
    assert float(drawn.min()) >= vp.sigma(vp.epsilon_t) * 0.99 and float(drawn.max()) <= vp.sigma(1.0) * 1.01


def test_ve_trains_on_log_uniform_noise_levels():
    ve = VEProcess()
    logs = ve.training_sigma(100_000).log()
    assert float(logs.min()) >= math.log(0.02) - 1e-6 and float(logs.max()) <= math.log(100.0) + 1e-6
    assert float(logs.mean()) == pytest.approx(0.5 * (math.log(0.02) + math.log(100.0)), abs=0.02)


def test_ddpm_is_the_discrete_variance_preserving_chain():
    ddpm = DDPMProcess()
    alpha_bar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    for t in (0, 10, 500, 999):  # x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε
        assert ddpm.scale(t) == pytest.approx(float(alpha_bar[t].sqrt()))
        assert ddpm.scale(t) * ddpm.sigma(t) == pytest.approx(float((1 - alpha_bar[t]).sqrt()))
    levels = ddpm.training_sigma(5000)
    assert torch.equal(ddpm.c_noise(levels), (levels[:, None] == ddpm.sigmas.float()).float().argmax(1).float())
    assert ddpm.time_steps(5, SamplerConfig()) == [999.0, 749.0, 500.0, 250.0, 0.0, -1.0]


@pytest.mark.parametrize("name", ["vp", "ve", "ddpm", "graph", "graph+regularisers"])
def test_a_fit_with_each_process_samples_conditions_and_is_saved(name, mixed_frame, tmp_path):
    config = fast_config()
    config.diffusion.process, regularised = name.split("+")[0], "+" in name
    if regularised:
        config.diffusion.graph_smoothness = config.diffusion.graph_energy = 0.1
        config.diffusion.graph_alignment = 0.01
    name = config.diffusion.process
    syn = Synthesizer(config=config, seed=0, progress=False).fit(mixed_frame)
    rows = syn.sample(200)
    assert list(rows.columns) == list(mixed_frame.columns) and rows["x"].notna().all()
    assert (syn.sample(50, given={"group": "b"})["group"] == "b").all()
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen")
    assert loaded.config_.diffusion.process == name
    assert loaded.config_.sampler.solver == resolved_solver(SamplerConfig(), name)  # "auto" resolved at fit
    pd.testing.assert_frame_equal(loaded.sample(20, seed=3), syn.sample(20, seed=3))


def test_a_stochastic_solver_samples_the_same_rows_for_a_seed_and_old_files_keep_heun(mixed_frame):
    config = fast_config()
    config.sampler.solver = "ancestral"
    syn = Synthesizer(config=config, seed=0, progress=False).fit(mixed_frame)
    pd.testing.assert_frame_equal(syn.sample(30, seed=3), syn.sample(30, seed=3))
    assert not syn.sample(30, seed=3).equals(syn.sample(30, seed=4))
    # A file written before the solver was a setting was calibrated on Heun's rows.
    data = config.to_dict()
    del data["sampler"]["solver"]
    assert SynthesizerConfig.from_dict(data).sampler.solver == "heun"


def test_the_auto_solver_is_dpm_solver_where_heun_steps_are_far_off():
    auto = SamplerConfig()
    assert auto.solver == "auto"
    assert {p: resolved_solver(auto, p) for p in ("edm", "ve", "graph", "vp", "ddpm")} == {
        "edm": "heun", "ve": "dpm2m", "graph": "dpm2m", "vp": "heun", "ddpm": "heun"}
    assert resolved_solver(SamplerConfig(s_churn=10), "ve") == "heun"  # churn is Heun's
    assert resolved_solver(SamplerConfig(solver="ancestral"), "edm") == "ancestral"
