import numpy as np
import pandas as pd
import pytest
import torch

from tabgen import SynthesizerConfig

# Two cores are shared with other work in CI; one thread keeps the suite's timing predictable.
torch.set_num_threads(1)


def make_mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small table with the awkward parts of real ones: related columns, integers, NaNs, categories."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    shift = pd.Series(group).map({"a": 0.0, "b": 3.0, "c": -2.0}).to_numpy()
    x = rng.normal(shift, 1.0)
    df = pd.DataFrame(
        {
            "group": group,
            "x": np.round(x, 2),
            "count": rng.poisson(20 + 5 * shift.clip(0)).astype(np.int64),
            "flag": rng.random(n) < 0.3,
            "income": np.where(rng.random(n) < 0.2, np.nan, np.round(np.exp(rng.normal(10, 1, n)))),
            "city": np.where(rng.random(n) < 0.1, None, rng.choice(["Oslo", "Lima", "Pune"], size=n)),
        }
    )
    return df


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    return make_mixed_frame()


def fast_config(**settings) -> SynthesizerConfig:
    """Enough training to exercise every path in seconds, not to produce good data; ``settings`` are
    SynthesizerConfig's (``rare_value_rows=0`` for a test of values as the table holds them)."""
    config = SynthesizerConfig(**settings)
    config.vae.max_steps = 60
    config.diffusion.max_steps = 100
    config.diffusion.width = 64
    config.diffusion.rows_per_unit = 0  # the tests' small frames keep this width
    config.sampler.num_steps = 10
    config.sampler.calibration_rows = 2048
    return config
