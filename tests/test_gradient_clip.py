import pytest
import torch

from tabgen.gradient_clip import MEAN_DECAY, SPIKE_FROM_STEP, GradientClip


def _weights_with_grad(norm: float) -> list[torch.Tensor]:
    weight = torch.zeros(3, 4, requires_grad=True)
    weight.grad = torch.full((3, 4), norm / 12**0.5)
    return [weight]


def _norm(params: list[torch.Tensor]) -> float:
    return float(torch.nn.utils.get_total_norm([p.grad for p in params]))


def test_a_spike_is_scaled_to_the_factor_times_the_running_mean_and_ordinary_steps_are_untouched():
    clip = GradientClip(spike_factor=5.0)
    for norm in [0.01] + [1.0, 1.2, 0.8] * SPIKE_FROM_STEP + [3.0]:  # a step 3x the mean is ordinary noise
        params = _weights_with_grad(norm)
        clip(params)
        assert _norm(params) == pytest.approx(norm, rel=1e-5)
    mean = float(clip.mean)
    spike = _weights_with_grad(976_000.0)
    clip(spike)
    assert _norm(spike) == pytest.approx(5.0 * mean, rel=1e-4)
    assert float(clip.mean) == pytest.approx(MEAN_DECAY * mean + (1 - MEAN_DECAY) * 5.0 * mean, rel=1e-5)


def test_the_bound_follows_norms_that_rise_steadily_tenfold():
    clip = GradientClip(spike_factor=5.0)
    for norm in torch.logspace(-1, 0, 300).tolist():
        params = _weights_with_grad(norm)
        clip(params)
        assert _norm(params) == pytest.approx(norm, rel=1e-5)


def test_max_norm_bounds_every_step_and_the_state_resumes():
    clip = GradientClip(max_norm=0.5, spike_factor=5.0)
    for _ in range(SPIKE_FROM_STEP + 1):
        params = _weights_with_grad(2.0)
        clip(params)
        assert _norm(params) == pytest.approx(0.5, rel=1e-5)
    resumed = GradientClip(max_norm=0.5, spike_factor=5.0)
    resumed.load_state_dict(clip.state_dict())
    assert torch.equal(resumed.mean, clip.mean) and resumed.steps == clip.steps


def test_without_bounds_nothing_changes():
    params = _weights_with_grad(1e6)
    GradientClip()(params)
    assert _norm(params) == pytest.approx(1e6, rel=1e-5)
