import math

import pytest
import torch

from tabgen import Synthesizer
from tabgen.errors import TabgenError
from tabgen.precision import _bfloat16_speedup, autocast_dtype, fast_bfloat16, mixed_precision, native_bfloat16
from tabgen.train import ema_update, learning_rate

from conftest import fast_config


def test_learning_rate_warms_up_linearly_then_holds_without_decay():
    assert math.isclose(learning_rate(1e-3, 0, 0.0, 100, decay=False), 1e-5)
    assert math.isclose(learning_rate(1e-3, 49, 0.0, 100, decay=False), 5e-4)
    assert learning_rate(1e-3, 99, 0.9, 100, decay=False) == 1e-3
    assert learning_rate(1e-3, 5000, 1.0, 100, decay=False) == 1e-3


def test_learning_rate_anneals_to_zero_along_a_cosine():
    rates = [learning_rate(1e-3, 1000, p / 10, 100, decay=True) for p in range(11)]
    assert rates[0] == 1e-3
    assert math.isclose(rates[5], 5e-4)
    assert rates[-1] < 1e-12
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert learning_rate(1e-3, 1000, 1.7, 100, decay=True) == rates[-1]  # past the end: stays at zero


def test_ema_update_ramps_its_decay_and_builds_no_autograd_graph():
    params = [torch.ones(3, requires_grad=True)]
    ema = [torch.zeros(3)]
    ema_update(ema, params, decay=0.999, step=0)  # decay 2/11 at the first step
    assert torch.allclose(ema[0], torch.full((3,), 9 / 11))
    assert ema[0].grad_fn is None and not ema[0].requires_grad
    ema_update(ema, params, decay=0.5, step=10_000)
    assert torch.allclose(ema[0], torch.full((3,), 0.5 * 9 / 11 + 0.5))


def test_precision_choices(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "float32") is None
    assert autocast_dtype(cpu, "bfloat16") is torch.bfloat16
    for fast in (True, False):
        monkeypatch.setattr("tabgen.precision.fast_bfloat16", lambda device, fast=fast: fast)
        assert autocast_dtype(cpu, "auto") is (torch.bfloat16 if fast else None)
    with pytest.raises(ValueError):
        autocast_dtype(cpu, "half")
    with mixed_precision(cpu, "bfloat16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.bfloat16
    with mixed_precision(cpu, "float32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32


@pytest.mark.parametrize("amx, speedup, expected", [(True, 0.5, True), (False, 2.2, True), (False, 0.5, False)])
def test_auto_precision_takes_bfloat16_where_it_is_faster(monkeypatch, amx, speedup, expected):
    # AVX512-BF16 without AMX made the denoiser's step slower than float32 on a Xeon, faster on an EPYC.
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr("tabgen.precision._bfloat16_speedup", lambda: speedup)
    native_bfloat16.cache_clear()
    fast_bfloat16.cache_clear()
    try:
        assert fast_bfloat16(torch.device("cpu")) is expected
        assert native_bfloat16(torch.device("cpu")) is amx
    finally:
        native_bfloat16.cache_clear()
        fast_bfloat16.cache_clear()


def test_bfloat16_speedup_is_float32s_best_time_over_bfloat16s(monkeypatch):
    # Five timed products per type, after a warm-up: float32's take 3, 2, 2, 4, 2 ticks, bfloat16's 1 each.
    durations = iter([3, 2, 2, 4, 2, 1, 1, 1, 1, 1])
    clock = [0.0]

    def perf_counter() -> float:
        if perf_counter.started:
            clock[0] += next(durations)
        perf_counter.started = not perf_counter.started
        return clock[0]

    perf_counter.started = False
    monkeypatch.setattr("tabgen.precision.perf_counter", perf_counter)
    assert _bfloat16_speedup() == 2.0


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_both_precisions_fit_and_sample(mixed_frame, precision):
    config = fast_config()
    config.diffusion.precision = precision
    out = Synthesizer(config=config, progress=False).fit(mixed_frame).sample(50)
    assert list(out.columns) == list(mixed_frame.columns)
    assert out["x"].notna().any()


def test_unknown_precision_is_refused(mixed_frame):
    config = fast_config()
    config.diffusion.precision = "fp8"
    with pytest.raises(TabgenError, match="precision"):
        Synthesizer(config=config, progress=False).fit(mixed_frame)


@pytest.mark.parametrize("bfloat16_units", [True, False])
@pytest.mark.parametrize("vectors", ["AVX512", "AVX2"])
def test_cpu_defaults_follow_the_hardware(monkeypatch, bfloat16_units, vectors):
    from tabgen.config import CPU_AVX512_MAX_STEPS, CPU_FLOAT32_LR, CPU_FLOAT32_MAX_STEPS, SynthesizerConfig

    monkeypatch.setattr("tabgen.config._cpu_multiplies_bfloat16", lambda: bfloat16_units)
    monkeypatch.setattr("tabgen.config._cpu_capability", lambda: vectors)
    cpu, default = SynthesizerConfig.for_device("cpu"), SynthesizerConfig()
    c = cpu.diffusion
    assert cpu.vae == default.vae
    if bfloat16_units:
        assert (c.width, c.lr, c.max_steps) == (default.diffusion.width, default.diffusion.lr, default.diffusion.max_steps)
    else:
        steps = CPU_AVX512_MAX_STEPS if vectors == "AVX512" else CPU_FLOAT32_MAX_STEPS
        assert (c.width, c.lr, c.max_steps) == (256, CPU_FLOAT32_LR, steps)
    assert SynthesizerConfig.for_device("cuda").diffusion.width == 1024


def test_configs_are_validated_on_construction():
    from tabgen import DiffusionConfig, SamplerConfig, SynthesizerConfig, VAEConfig

    with pytest.raises(TabgenError, match="DiffusionConfig.precision must be one of 'auto', 'float32', 'bfloat16', got 'fp8'"):
        DiffusionConfig(precision="fp8")
    with pytest.raises(TabgenError, match="VAEConfig.lr must be positive, got 0"):
        VAEConfig(lr=0)
    with pytest.raises(TabgenError, match="SamplerConfig.num_steps must be an integer, got 2.5"):
        SamplerConfig(num_steps=2.5)
    with pytest.raises(TabgenError, match="VAEConfig.d_token must be an integer or None"):
        VAEConfig(d_token="4")
    with pytest.raises(TabgenError, match="validation_fraction must be at least 0 and below 1"):
        SynthesizerConfig(validation_fraction=1.0)
    assert SamplerConfig(calibration_rows=0).calibration_rows == 0 and DiffusionConfig(P_mean=-3.0).P_mean == -3.0
    assert SynthesizerConfig.from_dict(SynthesizerConfig.for_device("cpu").to_dict()) == SynthesizerConfig.for_device("cpu")
