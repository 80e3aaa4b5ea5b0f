"""The CUDA path, run where a GPU is present; CI's machines have none and skip this module."""

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from tabgen import Synthesizer
from tabgen.cli import main
from tabgen.precision import autocast_dtype

from conftest import fast_config, make_mixed_frame

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def fitted() -> Synthesizer:
    return Synthesizer(config=fast_config(), progress=False, seed=0).fit(make_mixed_frame())


def test_auto_trains_and_samples_on_the_gpu_in_bfloat16(fitted):
    assert fitted.device_.type == "cuda"
    assert all(p.is_cuda for p in [*fitted.codec_.vae.parameters(), *fitted.denoiser_.parameters()])
    assert autocast_dtype(fitted.device_, fitted.config_.diffusion.precision) == torch.bfloat16
    fake = fitted.sample(3000, seed=1)
    assert len(fake) == 3000 and list(fake.columns) == list(make_mixed_frame().columns)
    pd.testing.assert_frame_equal(fake, fitted.sample(3000, seed=1))


def test_a_model_fitted_on_the_gpu_loads_on_a_cpu_and_back(fitted, tmp_path):
    path = tmp_path / "m.tabgen"
    fitted.save(path)
    on_cpu = Synthesizer.load(path, device="cpu", progress=False)
    assert all(not p.is_cuda for p in on_cpu.denoiser_.parameters())
    assert len(on_cpu.sample(100, seed=0)) == 100
    pd.testing.assert_frame_equal(Synthesizer.load(path, progress=False).sample(100, seed=2), fitted.sample(100, seed=2))


def test_conditional_sampling_and_imputation_on_the_gpu(fitted):
    fake = fitted.sample(200, given={"group": "b"}, seed=0)
    assert (fake["group"] == "b").all()
    holes = make_mixed_frame(50, seed=3)
    holes.loc[::2, "x"] = None
    assert fitted.impute(holes, seed=0)["x"].notna().all()


def test_cli_fits_and_samples_on_the_gpu(tmp_path):
    data, model, out = tmp_path / "t.csv", tmp_path / "m.tabgen", tmp_path / "s.csv"
    make_mixed_frame(200).to_csv(data, index=False)
    fit = CliRunner().invoke(main, ["fit", str(data), "-o", str(model), "--device", "cuda", "--time-budget", "5s"])
    assert fit.exit_code == 0, fit.output
    sample = CliRunner().invoke(main, ["sample", "-m", str(model), "-n", "300", "-o", str(out), "--device", "cuda"])
    assert sample.exit_code == 0, sample.output
    assert len(pd.read_csv(out)) == 300
