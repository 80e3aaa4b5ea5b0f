"""A graph-coupled linear SDE over a row's column tokens: the noise spreads along related columns.

A row's latent is a (tokens × d) tensor S, and the forward process is

    dS = −A·S dt + √(2β(t))·dW,   A = γ(L ⊗ I_d) + λI,

with L = D − W the Laplacian of the tokens' association graph, W measured on the training latents
(:func:`association_graph`), and β(t) linear over T unit steps. The marginal is S_t | S₀ ~ N(Φ_t·S₀, Σ_t)
with Φ_t = Φ_node ⊗ I_d and Σ_t = Σ_node ⊗ I_d, computed on the step grid by (implicit or explicit)
Euler's recursion, Φ_{k+1} = (I + A·Δt)⁻¹·Φ_k and Σ_{k+1} = (I + A·Δt)⁻¹(Σ_k + 2β_k·Δt·I)(I + A·Δt)⁻ᵀ.

A is symmetric and every Φ_k and Σ_k is a function of it, so all of them are diagonal in L's
eigenvectors U (the graph's modes): mode m is a scalar process x_m = Φ_m·x₀ + √Σ_m·ε whose rate is
a_m = λ + γ·μ_m. Smooth modes (μ small) keep their signal longest, so the noise erases the
differences between associated columns before what they share. The code works in the modes, where the
recursion, the marginal and the posterior of consecutive steps are elementwise.

Decided against the issue's ε-prediction with Ŝ₀ = Φ_t⁻¹(S_t − √Σ_t·ε_θ): Φ_t⁻¹ multiplies the
network's error by e^{a_m·t}, up to e^{100} for a well-connected token at the last step. The
denoiser is preconditioned per mode as EDM's is per coordinate, which is EDM's own form where Φ = 1:
with v = Φ²σ_d² + Σ, D_m = c_skip·x_m + c_out·F_m(c_in·x; t), c_skip = Φσ_d²/v (the exact denoiser
of Gaussian data), c_out = σ_d·√(Σ/v), c_in = 1/√v, and the loss weight 1/c_out².
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import SamplerConfig
from .process import Process
from .sampler import Denoiser


def association_graph(z: Tensor, d_token: int, k: int = 3, max_rows: int = 20_000) -> Tensor:
    """W: how strongly each pair of tokens is associated in the latents ``z`` (rows × tokens·d): the
    Frobenius norm of their d × d block of correlations over d, kept for each token's ``k`` strongest
    partners (and theirs), so a token's degree stays small."""
    z = z[:max_rows].double()
    n = z.shape[1] // d_token
    standard = (z - z.mean(0)) / z.std(0).clamp_min(1e-8)
    corr = standard.T @ standard / max(len(z) - 1, 1)
    W = corr.reshape(n, d_token, n, d_token).pow(2).sum((1, 3)).sqrt() / d_token
    W.fill_diagonal_(0)
    keep = torch.zeros_like(W, dtype=torch.bool)
    if n > 1:
        keep.scatter_(1, W.topk(min(k, n - 1), dim=1).indices, True)
    return (W * (keep | keep.T)).float()


def laplacian(W: Tensor) -> Tensor:
    """L = D − W."""
    return torch.diag(W.sum(1)) - W


def betas(T: int, beta_min: float, beta_max: float) -> Tensor:
    """β_k, linear over the T steps."""
    return torch.linspace(beta_min, beta_max, T, dtype=torch.float64)


def phi_sigma_dense(A: Tensor, beta: Tensor, dt: float = 1.0, implicit: bool = True) -> tuple[Tensor, Tensor]:
    """Φ_k and Σ_k (k = 0..T) of dS = −A·S dt + √(2β)·dW by Euler's recursion on the dense matrices:
    explicit, (I − A·Δt)·(·), or implicit, (I + A·Δt)⁻¹·(·). For tests and small graphs."""
    eye = torch.eye(len(A), dtype=torch.float64)
    F = torch.linalg.inv(eye + A.double() * dt) if implicit else eye - A.double() * dt
    phi, sigma = [eye], [torch.zeros_like(eye)]
    for b in beta.tolist():
        phi.append(F @ phi[-1])
        sigma.append(F @ (sigma[-1] + 2 * b * dt * eye) @ F.T if implicit else F @ sigma[-1] @ F.T + 2 * b * dt * eye)
    return torch.stack(phi), torch.stack(sigma)


def phi_sigma_modes(rates: Tensor, beta: Tensor, dt: float = 1.0, implicit: bool = True) -> tuple[Tensor, Tensor]:
    """:func:`phi_sigma_dense` in the eigenbasis of A, whose eigenvalues are ``rates``: (T + 1) × modes each."""
    factor = 1 / (1 + rates.double() * dt) if implicit else 1 - rates.double() * dt
    phi, sigma = [torch.ones_like(factor)], [torch.zeros_like(factor)]
    for b in beta.tolist():
        phi.append(factor * phi[-1])
        sigma.append(factor**2 * (sigma[-1] + 2 * b * dt) if implicit else factor**2 * sigma[-1] + 2 * b * dt)
    return torch.stack(phi), torch.stack(sigma)


class GraphProcess(nn.Module, Process):
    """The graph-coupled process over ``n_tokens`` tokens of width ``d_token``. Its graph, ``weights``,
    is a buffer (saved with the denoiser); :meth:`fit` measures it on the training latents. A sampler
    time is a step index t (0: the data)."""

    name = "graph"
    gaussian_prior = False  # its prior lives in the graph's modes

    def __init__(self, n_tokens: int, d_token: int, sigma_data: float = 0.5, gamma: float = 0.1, lam: float = 1e-2,
                 beta_min: float = 1e-5, beta_max: float = 1e-2, T: int = 1000, rho: float = 7.0,
                 smoothness: float = 0.0, energy: float = 0.0, alignment: float = 0.0):
        nn.Module.__init__(self)
        self.n_tokens, self.d_token, self.sigma_data = n_tokens, d_token, sigma_data
        self.smoothness, self.energy, self.alignment = smoothness, energy, alignment
        self.gamma, self.lam, self.beta_min, self.beta_max, self.T, self.rho = gamma, lam, beta_min, beta_max, T, rho
        self.register_buffer("weights", torch.zeros(n_tokens, n_tokens))
        self.register_load_state_dict_post_hook(lambda module, keys: module._forget())
        self._cache: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------ the graph and its schedule
    def fit(self, latents: Tensor) -> None:
        self.weights.copy_(association_graph(latents, self.d_token))
        self._forget()
        self._tables()  # now, not inside a CUDA graph's capture of the first training step

    def _forget(self) -> None:
        self._cache = None

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self._forget()  # the tables follow the weights to their new device and type
        return super()._apply(fn, recurse)

    def _tables(self) -> dict[str, Tensor]:
        """L's eigenvectors, and Φ and Σ per step and mode, from the weights (computed once)."""
        if self._cache is None:
            mu, U = torch.linalg.eigh(laplacian(self.weights.detach().double().cpu()))
            phi, sigma = phi_sigma_modes(self.lam + self.gamma * mu.clamp_min(0), betas(self.T, self.beta_min, self.beta_max))
            # ln Φ_k = k·ln Φ_1 exactly: Φ itself underflows (a fast mode's Φ_T is 2^-1000 where its rate is 1).
            log_phi = torch.arange(self.T + 1, dtype=torch.float64)[:, None] * phi[1].log()
            device = self.weights.device
            self._cache = {"U": U.to(device), "mu": mu.clamp_min(0).to(device), "phi": phi.to(device),
                           "var": sigma.to(device), "log_phi": log_phi,
                           "phi_list": phi[:, 0].tolist(), "var_list": sigma[:, 0].tolist()}
        return self._cache

    def to_modes(self, x: Tensor) -> Tensor:
        """(rows, tokens·d) in the node basis → (rows, modes, d)."""
        return self._rotated("jm,bjd->bmd", x.reshape(len(x), self.n_tokens, -1))

    def from_modes(self, x: Tensor) -> Tensor:
        """(rows, modes, d) → (rows, tokens·d) in the node basis."""
        return self._rotated("jm,bmd->bjd", x).reshape(len(x), -1)

    def _rotated(self, equation: str, x: Tensor) -> Tensor:
        # In float32 at least, also under bfloat16 autocast: the last steps' noise is 0.5 % of a latent,
        # about bfloat16's rounding.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            return torch.einsum(equation, self._tables()["U"].to(dtype), x.to(dtype))

    def _at(self, t: Tensor | float, like: Tensor) -> tuple[Tensor, Tensor]:
        """Φ_t and Σ_t per mode, shaped to broadcast against (rows, modes, d)."""
        tables = self._tables()
        if isinstance(t, Tensor):
            index = t.reshape(-1).round().long().clamp(0, self.T).to(tables["phi"].device)
            return tables["phi"][index].to(like.dtype)[..., None], tables["var"][index].to(like.dtype)[..., None]
        index = min(max(round(t), 0), self.T)
        return tables["phi"][index].to(like.dtype)[:, None], tables["var"][index].to(like.dtype)[:, None]

    def _ratio(self, t: float, t_next: float, like: Tensor) -> Tensor:
        """Φ_t/Φ_{t_next} per mode, from the logarithms, so that underflowed Φs give 0 and not 0/0."""
        log_phi, i, j = self._tables()["log_phi"], min(max(round(t), 0), self.T), min(max(round(t_next), 0), self.T)
        return (log_phi[i] - log_phi[j]).exp().to(like.device, like.dtype)[:, None]

    def _log_snr(self, t: float, like: Tensor) -> Tensor:
        """DPM-Solver's λ = ln(Φ_t/√Σ_t) per mode, for t ≥ 1, in float64 (a fast mode's λ is near −700)."""
        tables, index = self._tables(), min(max(round(t), 1), self.T)
        return (tables["log_phi"][index] - 0.5 * tables["var"][index].cpu().log()).to(like.device)[:, None]

    # ------------------------------------------------------------------ the Process interface
    def sigma(self, t: float) -> float:
        """The noise-to-signal ratio √Σ/Φ of the smoothest mode, the last to lose its signal."""
        tables, index = self._tables(), min(max(round(t), 0), self.T)
        return math.sqrt(tables["var_list"][index]) / tables["phi_list"][index]

    def _spaced(self, u: Tensor) -> Tensor:
        """Steps t = (T^{1/ρ} + u·(1 − T^{1/ρ}))^ρ for u in [0, 1], rounded: dense where the fast modes lose
        their signal, within the first tens of steps."""
        top = self.T ** (1 / self.rho)
        return (top + u * (1 - top)).pow(self.rho).round().clamp(1, self.T)

    def time_steps(self, num_steps: int, config: SamplerConfig) -> list[float]:
        """Up to ``num_steps`` distinct steps from T down to 1, ρ-spaced as EDM's noise levels, then 0 (the data)."""
        steps = self._spaced(torch.linspace(0, 1, num_steps, dtype=torch.float64)).tolist()
        return sorted(set(steps), reverse=True) + [0.0]

    def training_sigma(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """Steps t, as densely as the sampler visits them: the graph process is conditioned on its time."""
        return self._spaced(torch.rand(n, device=device))

    def denoise(self, net: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        phi, var = self._at(t.reshape(-1).expand(len(x)), x)
        v = phi**2 * self.sigma_data**2 + var
        c_skip, c_out, c_in = phi * self.sigma_data**2 / v, self.sigma_data * (var / v).sqrt(), v.rsqrt()
        modes = self.to_modes(x)
        F = net((c_in * modes).reshape(len(x), -1), t.reshape(-1).to(x.dtype).expand(len(x))).reshape(modes.shape)
        return self.from_modes(c_skip * modes + c_out * F)

    def loss(self, D: Denoiser, x: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
        phi, var = self._at(sigma, x)
        noised = self.from_modes(phi * self.to_modes(x) + var.sqrt() * noise.reshape(len(x), self.n_tokens, -1))
        weight = (phi**2 * self.sigma_data**2 + var) / (self.sigma_data**2 * var)  # 1/c_out²
        clean = D(noised, sigma)
        error = self.to_modes(clean - x)
        return (weight * error**2).mean() + self.regularisers(clean, x, error)

    def regularisers(self, clean: Tensor, x: Tensor, error: Tensor) -> Tensor | float:
        """The optional penalties on Ŝ₀ = ``clean`` (rows, tokens·d), each a mean over the rows' values:
        graph smoothness ‖L·Ŝ₀‖², the quadratic energy ½‖M^{1/2}(Ŝ₀ − S₀)‖² with M = A_node, and the
        alignment Σ_i (1 − cos θ_i) of each token's Ŝ₀ with its S₀ (``error`` is Ŝ₀ − S₀ in the modes)."""
        total: Tensor | float = 0.0
        if not (self.smoothness or self.energy or self.alignment):
            return total
        mu = self._tables()["mu"].to(error.dtype)[:, None]  # L and A_node are diagonal in the modes
        if self.smoothness:
            total = total + self.smoothness * (mu**2 * self.to_modes(clean) ** 2).mean()
        if self.energy:
            total = total + self.energy * 0.5 * ((self.lam + self.gamma * mu) * error**2).mean()
        if self.alignment:
            shaped = (len(x), self.n_tokens, -1)
            cos = nn.functional.cosine_similarity(clean.reshape(shaped), x.reshape(shaped), dim=-1)
            total = total + self.alignment * (1 - cos).sum(-1).mean()
        return total

    def prior(self, noise: Tensor, t: float) -> Tensor:
        return self.from_modes(self._at(t, noise)[1].sqrt() * self._modes_of_noise(noise))

    def noised(self, y: Tensor, t: float, noise: Tensor) -> Tensor:
        if t <= 0:
            return y
        phi, var = self._at(t, y)
        return self.from_modes(phi * self.to_modes(y) + var.sqrt() * self._modes_of_noise(noise))

    def renoised(self, x: Tensor, t_low: float, t_high: float, noise: Tensor) -> Tensor:
        var_l, var_h, F = self._at(t_low, x)[1], self._at(t_high, x)[1], self._ratio(t_high, t_low, x)
        return self.from_modes(F * self.to_modes(x) + (var_h - F**2 * var_l).clamp_min(0).sqrt() * self._modes_of_noise(noise))

    def step(self, D: Denoiser, x: Tensor, t: float, t_next: float) -> Tensor:
        """DDIM's deterministic step per mode: x̂₀ noised to t_next with the noise it implies."""
        clean = self._clean_estimate(D, x, t)
        if t_next <= 0:
            return clean
        (phi, var), (phi_n, var_n) = self._at(t, x), self._at(t_next, x)
        modes, clean_modes = self.to_modes(x), self.to_modes(clean)
        return self.from_modes(phi_n * clean_modes + (var_n / var).sqrt() * (modes - phi * clean_modes))

    def ancestral_step(self, D: Denoiser, x: Tensor, t: float, t_next: float, noise: Tensor) -> Tensor:
        """A draw from the Gaussian posterior of S_{t_next} given S_t and Ŝ₀, per mode: with
        F = Φ_t/Φ_{t_next}, mean Φ_{t_next}·Ŝ₀ + Σ_{t_next}·F/Σ_t·(S_t − Φ_t·Ŝ₀) and variance
        Σ_{t_next}·(Σ_t − F²·Σ_{t_next})/Σ_t."""
        clean = self._clean_estimate(D, x, t)
        if t_next <= 0:
            return clean
        (phi, var), (phi_n, var_n), F = self._at(t, x), self._at(t_next, x), self._ratio(t, t_next, x)
        modes, clean_modes = self.to_modes(x), self.to_modes(clean)
        mean = phi_n * clean_modes + var_n * F / var * (modes - phi * clean_modes)
        spread = (var_n * (var - F**2 * var_n) / var).clamp_min(0).sqrt()
        return self.from_modes(mean + spread * self._modes_of_noise(noise))

    def clean(self, x: Tensor, t: float) -> Tensor:
        return x

    def dpm_solver_2m(self, D: Denoiser, noise: Tensor, times: list[float]) -> Tensor:
        """DPM-Solver++(2M) per mode. Its first-order step is the DDIM step of :meth:`step`; the second
        order extrapolates x̂₀ along each mode's own λ = ln(Φ/√Σ), so the modes' different clocks each
        get a second-order step."""
        x, previous, lam_previous = self.prior(noise, times[0]), None, None
        for t, t_next in zip(times[:-1], times[1:]):
            clean = self.to_modes(self._clean_estimate(D, x, t))
            if t_next <= 0:
                return self.from_modes(clean)
            (phi, var), (phi_n, var_n) = self._at(t, x), self._at(t_next, x)
            lam, lam_n = self._log_snr(t, x), self._log_snr(t_next, x)
            estimate = clean
            if previous is not None:
                r = ((lam - lam_previous) / (lam_n - lam)).to(x.dtype)
                estimate = (1 + 1 / (2 * r)) * clean - 1 / (2 * r) * previous
            kept = (var_n / var).sqrt()
            x = self.from_modes(kept * self.to_modes(x) + (phi_n - kept * phi) * estimate)
            previous, lam_previous = clean, lam
        return x

    def _clean_estimate(self, D: Denoiser, x: Tensor, t: float) -> Tensor:
        return D(x, torch.full((len(x),), float(t), dtype=x.dtype, device=x.device))

    def _modes_of_noise(self, noise: Tensor) -> Tensor:
        """Standard normal noise in the node basis is standard normal in the modes (U is orthogonal)."""
        return noise.reshape(len(noise), self.n_tokens, -1)
