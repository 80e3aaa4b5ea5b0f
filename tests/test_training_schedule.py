import math

import pytest
import torch

from tabgen import Synthesizer
from tabgen.errors import TabgenError
from tabgen.precision import autocast_dtype, mixed_precision, native_bfloat16, resolved_precision
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
    for units in (True, False):
        monkeypatch.setattr("tabgen.precision.native_bfloat16", lambda device, units=units: units)
        assert autocast_dtype(cpu, "auto") is (torch.bfloat16 if units else None)
        assert resolved_precision("auto", cpu) == ("bfloat16" if units else "float32")
    with pytest.raises(ValueError):
        autocast_dtype(cpu, "half")
    with mixed_precision(cpu, "bfloat16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.bfloat16
    with mixed_precision(cpu, "float32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32


@pytest.mark.parametrize("vendor, amx, avx512_bf16, isa_cap, expected", [
    ("GenuineIntel", True, True, None, True), ("GenuineIntel", True, True, "avx512_core_amx", True),
    ("GenuineIntel", True, True, "AVX512_CORE_BF16", False), ("GenuineIntel", False, True, None, False),
    ("AuthenticAMD", False, True, None, True), ("AuthenticAMD", False, True, "AVX512_CORE_BF16", True),
    ("AuthenticAMD", False, True, "AVX2", False), ("GenuineIntel", True, True, "AVX2", False),
    ("AuthenticAMD", False, False, None, False)])
def test_bfloat16_units_come_from_features_and_onednns_cap(monkeypatch, vendor, amx, avx512_bf16, isa_cap, expected):
    # From features alone, never from a timing, so that load cannot change the model; oneDNN's ISA cap is
    # how one machine emulates another (a Xeon without AMX, a laptop with AVX2 only).
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr("tabgen.precision._cpu_vendor", lambda: vendor)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if isa_cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
    native_bfloat16.cache_clear()
    try:
        assert native_bfloat16(torch.device("cpu")) is expected
    finally:
        native_bfloat16.cache_clear()


def test_a_fit_keeps_its_resolved_float_type(mixed_frame, tmp_path, monkeypatch):
    monkeypatch.setattr("tabgen.precision.native_bfloat16", lambda device: False)
    fitted = Synthesizer(config=fast_config(), progress=False).fit(mixed_frame)
    assert fitted.config_.diffusion.precision == "float32"
    fitted.save(tmp_path / "m.tabgen")
    monkeypatch.setattr("tabgen.precision.native_bfloat16", lambda device: True)
    loaded = Synthesizer.load(tmp_path / "m.tabgen")
    assert loaded.config_.diffusion.precision == "float32" and loaded.model_.sampler.precision == "float32"


def test_a_bfloat16_model_samples_in_float32_where_bfloat16_is_emulated(mixed_frame, tmp_path, monkeypatch):
    config = fast_config()
    config.diffusion.precision = "bfloat16"
    Synthesizer(config=config, progress=False).fit_and_save(mixed_frame, tmp_path / "m.tabgen")
    for units, products in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr("tabgen.precision.native_bfloat16", lambda device, units=units: units)
        loaded = Synthesizer.load(tmp_path / "m.tabgen")
        assert loaded.config_.diffusion.precision == "bfloat16" and loaded.model_.sampler.precision == products
        assert len(loaded.sample(20)) == 20


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


@pytest.mark.parametrize("vectors", ["AVX512", "AVX2"])
def test_every_cpu_gets_one_recipe_and_only_its_steps_follow_its_vectors(monkeypatch, vectors):
    from tabgen.config import CPU_AVX2_MAX_STEPS, SynthesizerConfig

    monkeypatch.setattr("tabgen.config._cpu_capability", lambda: vectors)
    cpu, default = SynthesizerConfig.for_device("cpu"), SynthesizerConfig()
    assert cpu.vae == default.vae
    c = cpu.diffusion
    assert (c.width, c.batch_size, c.lr) == (default.diffusion.width, default.diffusion.batch_size, default.diffusion.lr)
    assert c.max_steps == (default.diffusion.max_steps if vectors == "AVX512" else CPU_AVX2_MAX_STEPS)
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


@pytest.mark.parametrize("max_grad_norm", [1e-3, None])
def test_the_denoisers_steps_take_gradients_of_at_most_max_grad_norm(mixed_frame, monkeypatch, max_grad_norm):
    import tabgen.train as train

    norms = []
    adam = train.adam

    def recording(params, lr):
        optimizer = adam(params, lr)
        step = optimizer.step

        def recorded(*args, **kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
            return step(*args, **kwargs)

        optimizer.step = recorded
        return optimizer

    monkeypatch.setattr(train, "adam", recording)
    config = fast_config()
    config.vae.max_steps, config.diffusion.max_steps, config.diffusion.max_grad_norm = 5, 40, max_grad_norm
    config.diffusion.grad_spike_factor = None
    Synthesizer(config=config, progress=False).fit(mixed_frame)
    denoiser_steps = norms[-40:]  # the VAE's optimizer came first and is not clipped
    if max_grad_norm is None:
        assert max(denoiser_steps) > 1e-2
    else:
        assert max(denoiser_steps) <= max_grad_norm * 1.001
