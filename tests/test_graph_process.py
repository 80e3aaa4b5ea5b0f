"""The graph-coupled process: its recursion, its marginals, its loss and its sampler, property by property."""

import pytest
import torch

from tabgen.config import SamplerConfig, SynthesizerConfig
from tabgen.diffusion.edm import EDMPrecond
from tabgen.diffusion.graph import GraphProcess, association_graph, betas, laplacian, phi_sigma_dense, phi_sigma_modes
from tabgen.diffusion.solvers import solve
from tabgen.errors import TabgenError

SIGMA_DATA = 0.5
#: A path 0 – 1 – 2 and a token 3 on its own.
W = torch.tensor([[0, 0.8, 0, 0], [0.8, 0, 0.5, 0], [0, 0.5, 0, 0], [0, 0, 0, 0]], dtype=torch.float64)


class Zero(torch.nn.Module):
    def forward(self, x, c_noise):
        return torch.zeros_like(x)


def graph_process(d_token=2):
    process = GraphProcess(len(W), d_token, SIGMA_DATA)
    process.weights.copy_(W)
    return process


def node_matrices(beta, implicit=True):
    mu, U = torch.linalg.eigh(laplacian(W))
    phi, sigma = phi_sigma_modes(0.01 + 0.1 * mu, beta, implicit=implicit)
    return U @ torch.diag_embed(phi) @ U.T, U @ torch.diag_embed(sigma) @ U.T


def test_at_time_zero_phi_is_the_identity_and_sigma_zero():
    phi, sigma = phi_sigma_dense(0.1 * laplacian(W) + 0.01 * torch.eye(4), betas(50, 1e-5, 1e-2))
    assert torch.equal(phi[0], torch.eye(4, dtype=torch.float64)) and not sigma[0].any()


def test_sigma_is_symmetric_positive_semidefinite_and_grows():
    _, sigma = phi_sigma_dense(0.1 * laplacian(W) + 0.01 * torch.eye(4), betas(1000, 1e-5, 1e-2))
    assert torch.allclose(sigma, sigma.transpose(1, 2))
    assert (torch.linalg.eigvalsh(sigma) >= -1e-12).all()
    assert (torch.linalg.eigvalsh(sigma[1:] - sigma[:-1]) >= -1e-12).all()


def test_the_kronecker_form_equals_the_dense_form():
    d, beta = 3, betas(200, 1e-5, 1e-2)
    A = 0.1 * torch.kron(laplacian(W), torch.eye(d, dtype=torch.float64)) + 0.01 * torch.eye(4 * d, dtype=torch.float64)
    phi, sigma = phi_sigma_dense(A, beta)
    phi_node, sigma_node = node_matrices(beta)
    eye = torch.eye(d, dtype=torch.float64)
    for k in (1, 50, 200):
        assert torch.allclose(phi[k], torch.kron(phi_node[k], eye), atol=1e-10)
        assert torch.allclose(sigma[k], torch.kron(sigma_node[k], eye), atol=1e-10)


def test_explicit_and_implicit_euler_agree_for_small_steps():
    A, beta = 0.1 * laplacian(W) + 0.01 * torch.eye(4), betas(20_000, 1e-5, 1e-2)
    explicit = phi_sigma_dense(A, beta, dt=0.01, implicit=False)
    implicit = phi_sigma_dense(A, beta, dt=0.01, implicit=True)
    for a, b in zip(explicit, implicit):
        assert torch.allclose(a[-1], b[-1], rtol=1e-3, atol=1e-8)


def test_the_graph_links_associated_tokens_only():
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(5000, 2, generator=g)
    z = torch.cat([shared, shared + 0.3 * torch.randn(5000, 2, generator=g), torch.randn(5000, 2, generator=g)], 1)
    graph = association_graph(z, d_token=2, k=1)
    assert graph[0, 1] > 0.4 and graph[0, 1] == graph[1, 0]
    assert graph[0, 2] < 0.05 and graph[1, 2] < 0.05


def test_the_marginal_is_the_data_at_time_zero_and_the_prior_at_the_last_time():
    process = graph_process()
    times = process.time_steps(20, SamplerConfig())
    y, noise = SIGMA_DATA * torch.randn(100_000, 8), torch.randn(100_000, 8)
    assert times[-1] == 0 and torch.equal(process.noised(y, 0, noise), y)
    noised, prior = process.noised(y, times[0], noise), process.prior(noise, times[0])
    assert torch.allclose(noised, prior, atol=1e-3)
    assert process.sigma(times[0]) > 80  # the smoothest mode's signal is under 1/80 of its noise


def test_the_zero_network_has_loss_one_at_every_time():
    process = graph_process()
    D = EDMPrecond(Zero(), SIGMA_DATA, process)
    x = SIGMA_DATA * torch.randn(50_000, 8)
    for t in (1, 100, 500, 1000):
        loss = process.loss(D, x, torch.full((len(x),), float(t)), torch.randn_like(x))
        assert 0.9 < float(loss) < 1.1


@pytest.mark.parametrize("solver, levels, tolerance", [("dpm2m", 50, 0.02), ("heun", 200, 0.06), ("ancestral", 200, 0.12)])
def test_the_sampler_with_the_exact_denoiser_recovers_the_data_distribution(solver, levels, tolerance):
    # Isotropic Gaussian data stays isotropic in the graph's modes, where the zero network's D is exact.
    # DDIM's and the ancestral steps are first order, and the fastest mode (rate 0.21 a step) loses its
    # signal within a few tens of steps: DPM-Solver's second order is what makes few levels enough.
    process = graph_process().double()
    D = EDMPrecond(Zero(), SIGMA_DATA, process)
    config = SamplerConfig(solver=solver)
    noise = torch.randn(20_000, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = solve(D, noise, process.time_steps(levels, config), process, config, torch.Generator().manual_seed(1))
    mode_std = process.to_modes(x).std(dim=(0, 2))
    assert ((mode_std - SIGMA_DATA).abs() < tolerance * SIGMA_DATA).all(), mode_std
    assert (x.T.cov() - SIGMA_DATA**2 * torch.eye(8)).abs().max() < 2 * tolerance * SIGMA_DATA**2


def test_the_graph_process_has_no_churn():
    config = SynthesizerConfig()
    config.diffusion.process, config.sampler.s_churn = "graph", 10.0
    with pytest.raises(TabgenError, match="graph process"):
        config.validate()


@pytest.mark.parametrize("solver", ["heun", "dpm2m", "ancestral"])
def test_fast_modes_stay_finite_in_float32(solver):
    # A strongly linked pair has rate 1 + λ: its Φ_T is about 2^-1000, zero in float32 (and float64's
    # smallest numbers are reached at rates above 1). Every step and the inpainting's renoising stay finite.
    process = GraphProcess(len(W), 2, SIGMA_DATA)
    process.weights.copy_(5 * W)
    D = EDMPrecond(Zero(), SIGMA_DATA, process)
    config = SamplerConfig(solver=solver)
    noise = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    x = solve(D, noise, process.time_steps(20, config), process, config, torch.Generator().manual_seed(1))
    assert torch.isfinite(x).all()
    assert torch.isfinite(process.renoised(x, 1.0, 1000.0, noise)).all()


def test_the_regularisers_are_their_dense_forms_in_the_node_basis():
    process = GraphProcess(len(W), 2, SIGMA_DATA, smoothness=1.0).double()
    process.weights.copy_(W)
    clean, x = torch.randn(50, 8, dtype=torch.float64), torch.randn(50, 8, dtype=torch.float64)
    error = process.to_modes(clean - x)
    L = laplacian(W)
    A = 0.1 * L + 0.01 * torch.eye(4, dtype=torch.float64)
    node = lambda v: v.reshape(50, 4, 2)  # noqa: E731
    smooth = torch.einsum("ij,bjd->bid", L, node(clean)).pow(2).mean()
    assert torch.allclose(torch.as_tensor(process.regularisers(clean, x, error)), smooth)
    process.smoothness, process.energy = 0.0, 1.0
    diff = node(clean - x)
    energy = 0.5 * torch.einsum("bid,ij,bjd->", diff, A, diff) / diff.numel()
    assert torch.allclose(torch.as_tensor(process.regularisers(clean, x, error)), energy)
    process.energy, process.alignment = 0.0, 1.0
    assert float(process.regularisers(x, x, error)) == pytest.approx(0.0, abs=1e-12)
    assert float(process.regularisers(-x, x, error)) == pytest.approx(2.0 * 4)  # 1 − cos π per token
