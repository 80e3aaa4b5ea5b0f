import contextlib

import pytest
import torch
from click.testing import CliRunner

from tabgen import FitInterrupted, Synthesizer, TabgenError
from tabgen.checkpoint import pack, unpack
from tabgen.cli import main
from tabgen.train import _Loop

from conftest import fast_config, make_mixed_frame


def test_pack_round_trip_keeps_tensors_int_keys_and_nesting():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))])
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    state = {"optimizer": opt.state_dict(), "list": [1, torch.zeros(2)], "x": 1.5, "inf": float("inf")}
    skeleton, tensors = pack(state)
    back = unpack(skeleton, tensors)
    assert list(back["optimizer"]["state"]) == [0]
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert torch.equal(back["list"][1], torch.zeros(2)) and back["inf"] == float("inf")


@contextlib.contextmanager
def interrupt_at(phase: str, epoch: int):
    """Make Ctrl-C arrive at the end of the given epoch of the given phase ("VAE" or "diffusion")."""
    original = _Loop.end_epoch

    def end_epoch(self, *args, **kwargs):
        stop = original(self, *args, **kwargs)
        if self.name == phase and self.result.epochs == epoch:
            raise KeyboardInterrupt
        return stop

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_Loop, "end_epoch", end_epoch)
        yield


def config():
    c = fast_config()
    c.vae.patience = c.diffusion.patience = 10**6  # run to the step limit, so epoch counts are known
    return c


@pytest.mark.parametrize("phase", ["VAE", "diffusion"])
def test_interrupted_fit_resumes_where_it_stopped(tmp_path, phase):
    df = make_mixed_frame(150)
    full = Synthesizer(config=config(), progress=False).fit(df)
    ckpt = tmp_path / "run.ckpt"
    syn = Synthesizer(config=config(), progress=False, checkpoint=ckpt, checkpoint_every=0)
    with interrupt_at(phase, 2), pytest.raises(KeyboardInterrupt):
        syn.fit(df)
    assert ckpt.exists()
    if phase == "diffusion":
        assert len(syn.sample(5)) == 5  # usable: the best weights so far

    resumed = Synthesizer(config=config(), progress=False, checkpoint=ckpt).fit(df, resume=True)
    assert resumed.vae_result_.epochs == full.vae_result_.epochs
    assert resumed.diffusion_result_.epochs == full.diffusion_result_.epochs
    assert len(resumed.diffusion_result_.history) == full.diffusion_result_.epochs
    assert not ckpt.exists()


def test_resume_refuses_other_data_and_a_missing_checkpoint(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(TabgenError, match="no checkpoint"):
        Synthesizer(checkpoint=ckpt).fit(make_mixed_frame(50), resume=True)
    with interrupt_at("VAE", 1), pytest.raises(KeyboardInterrupt):
        Synthesizer(config=config(), progress=False, checkpoint=ckpt, checkpoint_every=0).fit(make_mixed_frame(80))
    with pytest.raises(TabgenError, match="different table"):
        Synthesizer(config=config(), progress=False, checkpoint=ckpt).fit(make_mixed_frame(80, seed=1), resume=True)


def test_cli_ctrl_c_saves_the_best_model_and_resume_finishes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mixed_frame(150).to_csv("data.csv", index=False)
    monkeypatch.setattr("tabgen.synthesizer.SynthesizerConfig.for_device", classmethod(lambda cls, device: config()))
    with interrupt_at("diffusion", 2):
        r = CliRunner().invoke(main, ["fit", "data.csv", "-q"])
    assert r.exit_code == 130, r.output
    assert "best model so far" in r.output and "--resume" in r.output
    assert (tmp_path / "data.tabgen").exists() and (tmp_path / "data.tabgen.ckpt").exists()

    r = CliRunner().invoke(main, ["fit", "data.csv", "-q", "--resume"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "data.tabgen.ckpt").exists()
    r = CliRunner().invoke(main, ["fit", "data.csv", "-q", "--resume"])
    assert r.exit_code == 2 and "no checkpoint" in r.output


def test_fit_and_save_writes_the_best_model_on_ctrl_c_once_one_exists(tmp_path):
    df, path = make_mixed_frame(150), tmp_path / "m.tabgen"
    with interrupt_at("VAE", 1), pytest.raises(FitInterrupted) as vae_phase:
        Synthesizer(config=config(), progress=False).fit_and_save(df, path)
    assert not vae_phase.value.saved and not path.exists()
    with interrupt_at("diffusion", 2), pytest.raises(FitInterrupted) as diffusion_phase:
        Synthesizer(config=config(), progress=False).fit_and_save(df, path)
    assert diffusion_phase.value.saved and len(Synthesizer.load(path, progress=False).sample(3)) == 3
