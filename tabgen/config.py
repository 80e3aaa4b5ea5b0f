"""Every setting of the method, in typed dataclasses validated on construction.

The values follow TabSyn (ICLR 2024) and EDM (Karras et al. 2022) unless a docstring says why they
differ; the measurements behind each choice are in docs/speed.md ("Defaults and their evidence").
Every CPU gets one recipe; only its step limit depends on the CPU's vector instructions, and a GPU
gets TabSyn's width (:meth:`SynthesizerConfig.for_device`).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal

import torch

from .errors import TabgenError
from .precision import Precision

#: The forward processes a fit can choose (:mod:`tabgen.diffusion.processes`).
ProcessName = Literal["edm", "vp", "ve", "ddpm", "graph"]
PROCESSES = typing.get_args(ProcessName)
SolverName = Literal["auto", "heun", "dpm2m", "ancestral"]
SOLVERS = typing.get_args(SolverName)


class _Validated:
    """Checks every field against its annotation (and a positive value for numbers, unless listed in
    ``_non_negative`` or ``_any_sign``) on construction; :meth:`validate` checks again after edits."""

    _non_negative: typing.ClassVar[tuple[str, ...]] = ()
    _any_sign: typing.ClassVar[tuple[str, ...]] = ()
    _fractions: typing.ClassVar[tuple[str, ...]] = ()
    """Fields that must lie in [0, 1)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _Validated):
                value.validate()
            elif not _fits(value, hints[f.name]):
                raise TabgenError(f"{type(self).__name__}.{f.name} must be {_described(hints[f.name])}, got {value!r}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                self._check_range(f.name, value)

    def _check_range(self, name: str, value: float) -> None:
        where = f"{type(self).__name__}.{name}"
        if not math.isfinite(value):
            raise TabgenError(f"{where} must be finite, got {value!r}")
        if name in self._fractions and not 0 <= value < 1:
            raise TabgenError(f"{where} must be at least 0 and below 1, got {value!r}")
        if name in self._non_negative and value < 0:
            raise TabgenError(f"{where} must not be negative, got {value!r}")
        if name not in self._non_negative + self._any_sign + self._fractions and value <= 0:
            raise TabgenError(f"{where} must be positive, got {value!r}")


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _described(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if args:
        return " or ".join(_described(a) for a in args)
    return {int: "an integer", float: "a number", bool: "True or False", type(None): "None"}.get(hint, hint.__name__)


@dataclass
class VAEConfig(_Validated):
    """The column-token VAE."""

    d_token: int | None = 4
    """Latent width per column (TabSyn's 4); ``None`` chooses it per table with :func:`auto_token_width`."""
    n_layers: int = 2
    """Transformer layers in the encoder and in the decoder."""
    n_heads: int = 1
    factor: int = 8
    """Feed-forward width as a multiple of ``d_token`` (TabSyn: 32): as good a reconstruction, a faster step."""
    lr: float = 3e-3
    """TabSyn's 1e-3 left the VAE far from converged within the step limit."""
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

    _non_negative = ("beta_min",)


@dataclass
class DiffusionConfig(_Validated):
    """The denoiser on the VAE's latents."""

    process: ProcessName = "edm"
    """The forward process (:mod:`tabgen.diffusion.processes`): EDM's (Karras et al. 2022), the
    variance-preserving or variance-exploding one of Song et al. 2021, or DDPM's (Ho et al. 2020, sampled
    with DDIM's strided steps), each in EDM's form with its own preconditioning, training noise levels,
    loss weight and sampler times; or ``"graph"``, a linear SDE that couples the column tokens along
    their associations (:mod:`tabgen.diffusion.graph`). ``sigma_data``, ``P_mean``
    and ``P_std`` and the sampler's ``sigma_min``, ``sigma_max`` and ``rho`` are EDM's."""
    width: int = 256
    """Hidden width of the MLP denoiser (TabSyn: 1024; the GPU profile takes TabSyn's); a table of
    fewer than ``rows_per_unit`` rows per unit gets a narrower one (:func:`width_for_rows`)."""
    rows_per_unit: int = 32
    """A table of n rows trains a denoiser at most about n / ``rows_per_unit`` wide (never below
    :data:`MIN_ROWS_WIDTH`), as capacity beyond its rows is spent copying them: on 500 and 2,000 of
    adult's rows the DCR share fell from 0.68–0.73 and 0.60 at width 256 to 0.56 and 0.53 (docs/privacy.md,
    "Small tables"). 0 keeps ``width`` at any size."""
    noise_channels: int = 64
    """Width of the noise-level embedding (TabSyn: the denoiser's width): as good, and steps cheaper."""
    lr: float = 4e-3
    """Peak learning rate, reached after ``warmup_steps`` (the GPU profile, at width 1,024: 2e-3)."""
    max_grad_norm: float | None = 1.0
    """Each step's gradient is scaled down to at most this norm (``None``: never). Without a bound,
    default's denoiser (seed 0, one cached VAE) spiked at step 12,171 from a norm of 0.8 to 976,000 and
    died: its validation loss jumped from 0.44 to 5.8 and its C2ST fell to 0.20 (docs/speed.md). A private
    fit clips each row's gradient (:class:`DPConfig`)."""
    grad_spike_factor: float | None = None
    """Each step's gradient is scaled down to at most this many times the running mean of the recent
    steps' norms (:class:`tabgen.gradient_clip.GradientClip`; ``None``: never), a bound on spikes alone at
    any scale of gradients. At 5 instead of ``max_grad_norm`` 1 it scored level with it on superstore and
    beijing in float32 (0.013 and 0.004 of C2ST behind, one seed), where norm 1 had cost superstore
    0.03-0.07 against no bound in bfloat16 (docs/speed.md): not the default until measured there."""
    warmup_steps: int = 100
    lr_decay: bool = True
    """Anneal the rate to zero (cosine) by the step limit or the end of the time budget."""
    batch_size: int = 1024
    max_epochs: int = 10_000
    max_steps: int = 24_000
    """Ignored under a time budget, which ends training instead; a CPU without AVX512 takes
    :data:`CPU_AVX2_MAX_STEPS`."""
    patience: int = 200
    """Epochs without a better validation loss before training stops; with ``lr_decay`` the rule applies
    only in the second half of the schedule, as a plateau at the peak rate is not the model's limit."""
    ema_decay: float = 0.999
    """Exponential moving average of the weights; the EMA copy is the one kept and sampled."""
    sigma_data: float = 0.5
    P_mean: float = -1.2
    P_std: float = 1.2
    precision: Precision = "auto"
    """Float type of the denoiser's matrix products, in training and sampling: ``float32``,
    ``bfloat16``, or ``auto``, which a fit resolves from the hardware's features
    (:func:`tabgen.precision.resolved_precision`) and the model file keeps resolved."""
    latent_std: float = 1.0
    """Latents are standardised per dimension to this std (TabSyn divides by 2)."""
    whiten_correlation: float | None = None
    """Numerical columns whose normal scores correlate at least this much (in absolute value, directly
    or through a chain) have their tokens whitened together after the standardisation
    (:mod:`tabgen.whitening`); ``None`` standardises each dimension alone. Off by default: at 0.85 it
    lifted default's C2ST and Trend (its monthly bills) and cost shoppers' and magic's (docs/rules.md). A
    differentially private fit leaves it off (the correlations are not counted in its ε)."""
    graph_smoothness: float = 0.0
    """With ``process="graph"``, the weight of the graph smoothness penalty ‖L·Ŝ₀‖² on the denoiser's
    clean estimate (:meth:`tabgen.diffusion.graph.GraphProcess.regularisers`); the issue's 0.1 when on.
    The three penalties are off by default: on adult each traded a little C2ST for a little Trend
    (docs/processes.md, "The benchmark")."""
    graph_energy: float = 0.0
    """The weight of the quadratic energy ½‖A_node^{1/2}(Ŝ₀ − S₀)‖²; the issue's 0.1 when on."""
    graph_alignment: float = 0.0
    """The weight of the alignment Σ_tokens (1 − cos θ) of Ŝ₀ with S₀; the issue's 0.01 when on."""

    _non_negative = ("warmup_steps", "rows_per_unit", "graph_smoothness", "graph_energy", "graph_alignment")
    _any_sign = ("P_mean",)
    _fractions = ("ema_decay", "whiten_correlation")


@dataclass
class SamplerConfig(_Validated):
    """The deterministic sampler of the probability-flow ODE."""

    solver: SolverName = "auto"
    """``"heun"``: the process's deterministic steps, Heun's (2·N − 1 denoiser calls for N noise levels;
    DDIM's, one call a level, for DDPM and the graph process); ``"dpm2m"``:
    DPM-Solver++(2M), one call a level (:mod:`tabgen.diffusion.multistep`); ``"ancestral"``: DDPM's
    ancestral steps, one call a level (:mod:`tabgen.diffusion.stochastic`). ``"auto"`` is resolved at fit
    time (:func:`tabgen.diffusion.solvers.resolved_solver`) and the model file keeps the resolved one:
    DPM-Solver for VE and the graph process, whose Heun (or DDIM) steps at 20 levels are far off, and
    Heun for the others and with churn (docs/processes.md)."""
    s_churn: float = 0.0
    """EDM's stochastic sampler (its Algorithm 2) with Heun's steps: the noise added back, in total over
    the steps; 0 is the deterministic sampler."""
    s_tmin: float = 0.05
    s_tmax: float = 50.0
    """The noise levels between which ``s_churn`` adds noise (EDM's values for ImageNet)."""
    s_noise: float = 1.0
    """The added noise's scale (EDM: slightly above 1 offsets a denoiser's excess smoothing)."""
    num_steps: int = 20
    """Noise levels visited; 20 Heun steps score as 50 do."""
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    """The first noise level (EDM's). The sampler starts from N(0, σ_max²·I + Σ), Σ the latents' spread along
    their widest directions (:mod:`tabgen.diffusion.prior`), so a lower one is right: 14 levels from 10 sample
    1.3–1.7 times as fast, at the same C2ST on five tables of six and Trend 0.14 points higher (docs/speed.md)."""
    rho: float = 7.0
    batch_size: int = 10_000
    """Rows denoised at once; bounds memory for any ``n``."""
    calibration_rows: int = 16_384
    """Rows the fitted model samples once to learn its calibration (:mod:`tabgen.calibration`; fewer if
    a time budget runs out first); 0 leaves the rows uncalibrated."""
    inpaint_steps: int = 20
    """Heun steps of conditional sampling (``given``, ``rebalance``, ``impute``), before resampling."""
    inpaint_resamples: int = 9
    """RePaint resampling: each conditional step whose σ lies in the band below is taken this many extra
    times, noising back in between, so the generated columns come to agree with the given ones."""
    inpaint_resample_sigma_min: float = 0.3
    inpaint_resample_sigma_max: float = 20.0
    """The band of noise levels where resampling is spent (docs/conditional.md)."""

    _non_negative = ("calibration_rows", "inpaint_resamples", "s_churn", "s_tmin")


@dataclass
class PrivacyConfig(_Validated):
    """Differential privacy of the networks' training (DP-SGD, :mod:`tabgen.dp_sgd`; docs/privacy.md).

    With ``epsilon`` set, both networks train on every row (no validation rows, no early stopping, the
    last weights kept) with each row's gradient clipped and noised, for the step counts and batches
    below, which replace the VAE's and the denoiser's; the rules found in the table, which read the rows
    again, are left out, and the calibration reads them only as noisy class counts, which spend part of ε
    (:data:`tabgen.dp_sgd.COUNTS_SHARE`). What the guarantee does not cover is listed in docs/privacy.md."""

    epsilon: float | None = None
    """The privacy budget ε of (ε, δ)-differential privacy over both trainings and the calibration's counts;
    ``None`` trains without it."""
    delta: float | None = None
    """δ; ``None``: 10⁻⁵, or 1/(10·n) for a table of n > 10,000 rows (:func:`tabgen.dp_sgd.default_delta`)."""
    max_grad_norm: float = 1.0
    """Each row's gradient is clipped to this norm."""
    vae_steps: int = 300
    vae_batch_size: int = 1024
    """A row's gradient through the VAE takes ``vmap``, three times a plain step: fewer steps than a plain fit's 1,500."""
    diffusion_steps: int = 1000
    diffusion_batch_size: int = 8192
    """Fewer, larger batches than a plain fit's: the noise on their mean shrinks with the rows averaged
    (on adult at ε = 4, Trend 27.5 % → 21.2 % against 4,000 steps of 2,048 rows; docs/privacy.md)."""

    def validate(self) -> None:
        super().validate()
        if self.delta is not None and not 0 < self.delta < 1:
            raise TabgenError(f"PrivacyConfig.delta must lie between 0 and 1, got {self.delta!r}")


#: The denoiser's step limit on a CPU whose torch kernels stop at AVX2 (half AVX512's float32 throughput).
CPU_AVX2_MAX_STEPS = 8_000
#: The denoiser's step limit and peak rate on a GPU, at TabSyn's width (1,024) and batch (4,096).
GPU_MAX_STEPS = 15_000
GPU_LR = 2e-3
#: Values of fewer rows are protected (``SynthesizerConfig.rare_value_rows``); the cost of 5 and its
#: neighbours on the shared tables is in docs/privacy.md.
RARE_VALUE_ROWS = 5
#: What one batch may hold (see :meth:`SynthesizerConfig.for_table`): the attention maps of 1,024 rows
#: of 320 tokens (as many as the default batch of a table of up to 320 columns holds), and 2²⁷ logits
#: (0.5 GB in float32: 10,000 rows of 13,000 classes). Batches are cut to fit, never below the minimum.
MAX_ATTENTION_CELLS = 1024 * 320**2
MAX_LOGIT_CELLS = 2**27
MIN_BOUNDED_BATCH = 64
#: Bounds of :func:`auto_token_width`: TabSyn's token width, and the widest measured.
MIN_AUTO_TOKEN = 4
MAX_AUTO_TOKEN = 12


def auto_token_width(n_numerical: int, n_categorical: int, denoiser_width: int) -> int:
    """The token width for a table: wide where categories are a third of the columns or more, within
    the denoiser's width (so wide tables keep narrower tokens). Wider tokens learn more per denoiser
    step in short fits, but scored worse after a default fit's steps: not a default."""
    n_tokens = max(n_numerical + n_categorical, 1)
    if 3 * n_categorical < n_tokens:
        return MIN_AUTO_TOKEN
    return max(MIN_AUTO_TOKEN, min(MAX_AUTO_TOKEN, denoiser_width // n_tokens))


#: The narrowest denoiser :func:`width_for_rows` gives a small table.
MIN_ROWS_WIDTH = 16


def width_for_rows(width: int, n_rows: int, rows_per_unit: int) -> int:
    """The denoiser's width for a table of ``n_rows``: ``width``, or n_rows / ``rows_per_unit``
    rounded to a multiple of 8 where that is narrower (at least :data:`MIN_ROWS_WIDTH`)."""
    if rows_per_unit == 0:
        return width
    return min(width, max(MIN_ROWS_WIDTH, 8 * round(n_rows / (8 * rows_per_unit))))


def _cpu_capability() -> str:
    """The widest vector instructions torch's CPU kernels use here: ``AVX512``, ``AVX2``, ..."""
    return torch.backends.cpu.get_cpu_capability()


@dataclass
class SynthesizerConfig(_Validated):
    """All settings of a :class:`tabgen.Synthesizer`. ``SynthesizerConfig()`` is the profile of a CPU
    with AVX512; :meth:`for_device` is what a fit without a config uses."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    validation_fraction: float = 0.1
    """Share of the training rows held out (at most ``validation_max_rows``) to pick the best epoch."""
    validation_max_rows: int = 5000
    stream_sample_rows: int = 1_000_000
    """A table of more rows (a Parquet file or folder, a large CSV) is streamed from disk, never held
    whole: its schema, transforms, rules, validation rows and calibration are fitted on a uniform sample
    of this many rows, and the networks train on chunks of all of its rows (docs/scale.md)."""
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    rare_value_rows: int = RARE_VALUE_ROWS
    """A value held by fewer rows (a category, a value of a discrete number, a column's extremes) is
    never learned nor generated: it is grouped with others or moved to the nearest kept value before
    the fit (:mod:`tabgen.protection`, docs/privacy.md). 0 or 1 keeps every value."""

    _fractions = ("validation_fraction",)
    _non_negative = ("rare_value_rows",)

    def validate(self) -> None:
        super().validate()
        if self.diffusion.process == "graph" and self.sampler.s_churn > 0:
            raise TabgenError("the graph process has no churn (SamplerConfig.s_churn): EDM's stochastic sampler needs one "
                              "noise level for every coordinate; its solver 'ancestral' samples stochastically")

    @classmethod
    def for_device(cls, device: str) -> "SynthesizerConfig":
        """The defaults for a device type. Every CPU: the class's defaults (a width-256 denoiser),
        trained for :data:`CPU_AVX2_MAX_STEPS` where torch's kernels stop at AVX2 (about ten minutes on
        adult on 2 cores). A GPU: TabSyn's width and batch."""
        config = cls()
        if device == "cpu" and _cpu_capability() != "AVX512":
            config.diffusion.max_steps = CPU_AVX2_MAX_STEPS
        if device.startswith("cuda"):
            config.vae.batch_size, config.vae.max_steps = 4096, 20_000
            d = config.diffusion
            d.width, d.batch_size, d.lr, d.max_steps, d.patience = 1024, 4096, GPU_LR, GPU_MAX_STEPS, 500
        return config

    def for_table(self, n_numerical: int, cardinalities: list[int], n_rows: int | None = None) -> "SynthesizerConfig":
        """This config for a table of these tokens and ``n_rows`` rows: its denoiser narrowed for a small
        table (:func:`width_for_rows`), its token width chosen where it is ``None``, and its batches
        bounded so that a wide table, or one of many categories, fits in memory (the VAE's attention
        holds batch × tokens² numbers per layer; decoding, rows × all columns' classes)."""
        vae, sampler, diffusion = self.vae, self.sampler, self.diffusion
        if n_rows is not None:
            diffusion = replace(diffusion, width=width_for_rows(diffusion.width, n_rows, diffusion.rows_per_unit))
        if vae.d_token is None:
            vae = replace(vae, d_token=auto_token_width(n_numerical, len(cardinalities), diffusion.width))
        tokens, classes = max(n_numerical + len(cardinalities), 1), max(sum(cardinalities), 1)
        vae = replace(vae, batch_size=min(vae.batch_size, max(MIN_BOUNDED_BATCH, MAX_ATTENTION_CELLS // tokens**2)))
        rows = max(MIN_BOUNDED_BATCH, MAX_LOGIT_CELLS // classes)
        sampler = replace(sampler, batch_size=min(sampler.batch_size, rows),
                          calibration_rows=min(sampler.calibration_rows, rows))
        if (vae, sampler, diffusion) == (self.vae, self.sampler, self.diffusion):
            return self
        return replace(self, vae=vae, sampler=sampler, diffusion=diffusion)

    def private(self) -> "SynthesizerConfig":
        """This config as a fit with ``privacy.epsilon`` set trains: on every row, for the private
        step counts and batches."""
        dp = self.privacy
        return replace(self, validation_fraction=0.0,
                       vae=replace(self.vae, max_steps=dp.vae_steps, batch_size=min(self.vae.batch_size, dp.vae_batch_size)),
                       diffusion=replace(self.diffusion, max_steps=dp.diffusion_steps, batch_size=dp.diffusion_batch_size,
                                         whiten_correlation=None))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SynthesizerConfig":
        return _dataclass_from_dict(cls, data)


def _dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    if cls is DiffusionConfig and "width" in data:
        # Written before the noise embedding had its own width, when it was the denoiser's.
        data = {"noise_channels": data["width"], **data}
    if cls is SamplerConfig and "num_steps" in data:
        # Written before the solver was a setting: calibrated on Heun's rows.
        data = {"solver": "heun", **data}
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default_factory() if callable(f.default_factory) else None  # type: ignore[misc]
        kwargs[f.name] = _dataclass_from_dict(type(default), value) if is_dataclass(default) else value
    return cls(**kwargs)

