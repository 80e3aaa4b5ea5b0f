"""Every default of the method, in one typed place.

The values follow TabSyn (ICLR 2024) and EDM (Karras et al. 2022) unless a comment says why they
differ. Two training profiles exist because the hardware decides what "good in minutes" means:
a small denoiser on a laptop CPU, TabSyn's width on a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any


@dataclass
class VAEConfig:
    """The column-token VAE."""

    d_token: int | None = 4
    """Latent width per column: each column becomes one token of this size. ``None`` chooses it per
    table with :func:`auto_token_width`, for short fits of tables where categories weigh."""
    n_layers: int = 2
    """Transformer layers in the encoder and in the decoder."""
    n_heads: int = 1
    factor: int = 8
    """Feed-forward width of each transformer layer, as a multiple of ``d_token`` (TabSyn: 32). The
    feed-forward block is most of a VAE step; 8 reconstructs as well at 2.4 times the speed."""
    lr: float = 3e-3
    """TabSyn's 1e-3 left the VAE far from converged after 1,500 steps on adult (validation
    reconstruction 0.018, 2.9 % of rare countries decoded as another); 3e-3 reached 0.007 and 1.2 %."""
    batch_size: int = 1024
    max_epochs: int = 400
    max_steps: int = 1500
    """Upper bound on optimizer steps, so small tables (one batch per epoch) and large ones cost alike."""
    patience: int = 30
    """Epochs without a better validation reconstruction before training stops."""
    beta_max: float = 1e-2
    """KL weight at the start."""
    beta_min: float = 1e-5
    beta_decay: float = 0.7
    """β is multiplied by this each time the reconstruction stalls for ``beta_patience`` epochs."""
    beta_patience: int = 10


@dataclass
class DiffusionConfig:
    """The EDM denoiser on the VAE's latents."""

    width: int = 512
    """Hidden width of the MLP denoiser (TabSyn: 1024). On adult, at equal steps, 512 cut Trend error
    from 5.1 % to 2.5 % against 256 for 2.5 times the seconds; 256 gains far less from 2.5 times the
    steps (benchmarks/results/ablation)."""
    noise_channels: int = 64
    """Width of the noise-level embedding (TabSyn: the denoiser's width). On adult (width 256, 8,000
    steps, two seeds) 64 scored as 256 did (Trend 3.28 % and 2.89 % against 3.07 % and 2.94 %) with
    steps about 15 % shorter."""
    lr: float = 2e-3
    """Peak learning rate, reached after ``warmup_steps``. On adult at width 512 1e-3 learned slower and
    4e-3 was unstable; the width-256 denoiser of CPUs without AMX takes 4e-3."""
    warmup_steps: int = 100
    lr_decay: bool = True
    """Anneal the rate to zero (cosine) by the step limit or the end of the time budget."""
    batch_size: int = 2048
    """With bfloat16 products a step of 2,048 rows costs 1.27 times one of 1,024; at equal seconds on
    adult it scored as well or slightly better (Trend 2.38 % against 2.46 %, C2ST 0.810 against 0.803)."""
    max_epochs: int = 10_000
    max_steps: int = 11_500
    """About eight minutes on adult on a 2-core CPU with AMX (bfloat16 matrix units); the learning rate
    anneals to zero by then. :meth:`SynthesizerConfig.for_device` chooses a narrower denoiser on CPUs
    without AMX. Ignored under a time budget, which ends training instead."""
    patience: int = 200
    """Epochs without a better validation loss before training stops; with ``lr_decay`` the rule applies
    only in the second half of the schedule, as a plateau at the peak rate is not the model's limit."""
    ema_decay: float = 0.999
    """Exponential moving average of the weights; the EMA copy is the one kept and sampled."""
    sigma_data: float = 0.5
    P_mean: float = -1.2
    P_std: float = 1.2
    precision: str = "auto"
    """Float type of the denoiser's matrix products: ``auto`` (bfloat16 on a GPU with native bfloat16, a
    CPU with AMX, or a CPU where it measures 1.5 times faster than float32; float32 elsewhere),
    ``float32`` or ``bfloat16``. Sampling uses the same."""
    latent_std: float = 1.0
    """Latents are standardised per dimension to this std (TabSyn divides by 2; 1.0 measured better)."""


@dataclass
class SamplerConfig:
    """EDM's deterministic Heun sampler."""

    num_steps: int = 20
    """Noise levels visited (2·N − 1 denoiser calls). On adult 20 scored as 50 does at 2.5 times the speed."""
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    batch_size: int = 10_000
    """Rows denoised at once; bounds memory for any ``n``."""
    calibration_rows: int = 16_384
    """Rows the fitted model samples once to learn its calibration (:mod:`tabgen.calibration`;
    fewer if a time budget runs out first); 0 leaves the rows uncalibrated."""
    inpaint_steps: int = 20
    """Heun steps of conditional sampling (``given``, ``rebalance``, ``impute``), before the resampling
    below (docs/conditional.md)."""
    inpaint_resamples: int = 9
    """RePaint resampling: each conditional step whose σ lies in the band below is taken this many
    extra times, noising back in between, so the generated columns come to agree with the given ones."""
    inpaint_resample_sigma_min: float = 0.3
    inpaint_resample_sigma_max: float = 20.0
    """The band of noise levels (in latent standard deviations) where resampling is spent: above it
    the state is nearly all noise; far below it the row is settled, and resampling there made columns
    independent of the given ones drift on adult."""


#: The denoiser's step limit and peak learning rate (at width 256) on a CPU without AMX (see
#: :meth:`SynthesizerConfig.for_device`), and the step limit where torch's kernels use AVX512.
CPU_FLOAT32_MAX_STEPS = 8_000
CPU_FLOAT32_LR = 4e-3
CPU_AVX512_MAX_STEPS = 24_000
#: Bounds of :func:`auto_token_width`: TabSyn's token width, and the widest measured.
MIN_AUTO_TOKEN = 4
MAX_AUTO_TOKEN = 12


def auto_token_width(n_numerical: int, n_categorical: int, denoiser_width: int) -> int:
    """The token width for a table: wide where categories are a third of the columns or more.

    On adult (8 categorical columns of 14, width-256 denoiser, Xeon without AMX) wider tokens made
    each denoiser step learn more: after 4,000 steps on one VAE Trend error fell from 4.20 % at width
    4 to 2.94 % at 8 and 3.03 % at 12 (7.86 % at 2), and in fits of TabularARGN's seconds width 12
    beat width 4 (three seeds: Shape, Trend, C2ST 1.50, 3.49, 0.735 against 1.66, 4.03, 0.724), as it
    did on shoppers (8 of 18). On magic (1 of 11) it cost C2ST 0.37 against 0.67, so mostly numerical
    tables keep TabSyn's 4. The latent's width adds to the denoiser's first and last layers and to
    every VAE step, so it stays within the denoiser's width: wide tables keep narrower tokens. Not a
    default: after 24,000 steps on adult (seed 0, uncalibrated) width 12 scored Trend 3.15 %, C2ST
    0.780 even with the bounded sampler, against 2.33 %, 0.840 for width 4 without it.
    """
    n_tokens = max(n_numerical + n_categorical, 1)
    if 3 * n_categorical < n_tokens:
        return MIN_AUTO_TOKEN
    return max(MIN_AUTO_TOKEN, min(MAX_AUTO_TOKEN, denoiser_width // n_tokens))


#: The denoiser's step limit on a GPU, at TabSyn's width (1,024) and batch (4,096).
GPU_MAX_STEPS = 15_000


def _cpu_multiplies_bfloat16() -> bool:
    import torch

    from .precision import native_bfloat16

    return native_bfloat16(torch.device("cpu"))


def _cpu_capability() -> str:
    """The widest vector instructions torch's CPU kernels use here: ``AVX512``, ``AVX2``, ..."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


@dataclass
class SynthesizerConfig:
    """All settings of a :class:`tabgen.Synthesizer`."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    validation_fraction: float = 0.1
    """Share of the training rows held out (at most ``validation_max_rows``) to pick the best epoch."""
    validation_max_rows: int = 5000

    @classmethod
    def for_device(cls, device: str) -> "SynthesizerConfig":
        """CPU: a small denoiser trained for minutes. GPU: TabSyn's width and a longer run."""
        config = cls()
        if device == "cpu" and not _cpu_multiplies_bfloat16():
            # Without AMX (most laptops) the width-512 step is compute-bound in float32 at 170-300 ms
            # instead of 39 (a Xeon with AVX512-BF16 but no AMX, an AMD EPYC with AVX2; 2 cores): the
            # full schedule would take most of an hour. In equal seconds on adult (EPYC), width 256
            # at batch 1,024 (36 ms a step, 11,000 steps) scored Trend 3.29 %, C2ST 0.75 against
            # 4.04 %, 0.69 for width 512 at batch 1,024 and 5.10 %, 0.60 for the bfloat16 defaults
            # cut to 1,600 steps; this many steps keep the default fit under ten minutes (docs/speed.md).
            # The narrower denoiser takes twice the rate: on adult (Xeon without AMX) 4e-3 scored Trend
            # 4.21 %, C2ST 0.67 against 5.37 %, 0.60 for 2e-3 after 4,000 steps and 3.56 %, 0.74 against
            # 3.91 %, 0.70 after 8,000; 6e-3 was worse than 4e-3 and 8e-3 unstable.
            config.diffusion.width = 256
            config.diffusion.batch_size = 1024
            config.diffusion.lr = CPU_FLOAT32_LR
            # AVX512's twice the float32 throughput of AVX2 (a step of 17 ms on a 2-core Xeon against
            # 36 on an EPYC) buys three times the steps in the same ten minutes; on adult Trend error
            # fell as steps^-0.36 from 8,000 to 20,000 (3.07 % to 2.20 %, one seed). Where AVX512-BF16
            # runs bfloat16 faster (``precision="auto"`` measures it), the step is cheaper still: 13 ms
            # against 30 in float32 on a 2-core AMD EPYC (Zen 4), where the default fit on adult then took
            # 510 s instead of 780.
            avx512 = _cpu_capability() == "AVX512"
            config.diffusion.max_steps = CPU_AVX512_MAX_STEPS if avx512 else CPU_FLOAT32_MAX_STEPS
            # TabSyn's 4-wide tokens: wider ones (auto_token_width) learned faster in fits of two
            # minutes but scored worse after this profile's 24,000 steps (docs/speed.md).
        if device.startswith("cuda"):
            config.vae.batch_size = 4096
            config.vae.max_steps = 20_000
            config.diffusion.width = 1024
            config.diffusion.batch_size = 4096
            # On adult (H100, three seeds) the validation loss was lowest between steps 11,600 and 16,400
            # whatever the limit: 15,000 steps scored as 100,000 did (Shape 0.90 %, Trend 1.73 %, C2ST 0.887 against
            # 0.91 %, 1.74 %, 0.894) in a fit of 39 s instead of 123 (benchmarks/results/gpu).
            config.diffusion.max_steps = GPU_MAX_STEPS
            config.diffusion.patience = 500
        return config

    def for_table(self, n_numerical: int, n_categorical: int) -> "SynthesizerConfig":
        """This config with its token width chosen for a table of these tokens where it is ``None``."""
        if self.vae.d_token is not None:
            return self
        width = auto_token_width(n_numerical, n_categorical, self.diffusion.width)
        return replace(self, vae=replace(self.vae, d_token=width))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SynthesizerConfig":
        return _dataclass_from_dict(cls, data)


def _dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    if cls is DiffusionConfig and "width" in data:
        # Written before the noise embedding had its own width, when it was the denoiser's.
        data = {"noise_channels": data["width"], **data}
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default_factory() if callable(f.default_factory) else None  # type: ignore[misc]
        kwargs[f.name] = _dataclass_from_dict(type(default), value) if is_dataclass(default) else value
    return cls(**kwargs)
