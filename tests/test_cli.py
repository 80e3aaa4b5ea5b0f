import pandas as pd
import pytest
from click.testing import CliRunner

from tabgen import Synthesizer, TabgenError
from tabgen.cli import main, parse_duration

from conftest import make_mixed_frame


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mixed_frame(200).to_csv("data.csv", index=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_fit_then_sample_in_the_same_folder(in_tmp):
    r = run("fit", "data.csv", "--time-budget", "3s", "-q")
    assert r.exit_code == 0, r.output
    assert (in_tmp / "data.tabgen").exists()
    r = run("sample", "-n", "25", "-q")
    assert r.exit_code == 0, r.output
    fake = pd.read_csv(in_tmp / "synthetic.csv")
    real = pd.read_csv(in_tmp / "data.csv")
    assert len(fake) == 25 and list(fake.columns) == list(real.columns)
    assert (fake.dtypes == real.dtypes).all()

    r = run("sample", "-n", "5", "-o", "-", "-q", "--seed", "1")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == ",".join(real.columns) and len(r.stdout.splitlines()) == 6


def test_overrides_and_output_path(in_tmp):
    r = run("fit", "data.csv", "-o", "m.tabgen", "--categorical", "count", "--process", "ve", "--solver", "dpm2m",
            "--whiten-correlated", "0.5", "--time-budget", "2", "-q")
    assert r.exit_code == 0, r.output
    r = run("sample", "-m", "m.tabgen", "-n", "10", "-o", "out.csv", "-q")
    assert r.exit_code == 0 and len(pd.read_csv("out.csv")) == 10
    config = Synthesizer.load("m.tabgen").config_
    assert (config.diffusion.process, config.sampler.solver, config.diffusion.whiten_correlation) == ("ve", "dpm2m", 0.5)


@pytest.mark.parametrize(
    "args, setup, message",
    [
        (["fit", "missing.csv"], None, "no such file"),
        (["fit", "empty.csv"], ("empty.csv", ""), "empty"),
        (["fit", "header.csv"], ("header.csv", "a,b\n"), "no rows"),
        (["fit", "blank.csv"], ("blank.csv", "a,b\n1,\n2,\n"), "'b'.*entirely empty"),
        (["fit", "data.csv", "--categorical", "nope"], None, "'nope'"),
        (["fit", "data.csv", "--time-budget", "soon"], None, "time budget"),
        (["fit", "data.csv", "--whiten-correlated", "1"], None, "range"),
        (["sample", "-n", "10"], None, "no model"),
        (["sample", "-n", "0", "-m", "data.csv"], None, "positive"),
        (["sample", "-m", "fake.tabgen"], ("fake.tabgen", "not a model"), "not a tabgen model"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(in_tmp, args, setup, message):
    if setup:
        (in_tmp / setup[0]).write_text(setup[1])
    before = set(p.name for p in in_tmp.iterdir())
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert pd.Series([r.output]).str.contains(message, regex=True).all(), r.output
    assert set(p.name for p in in_tmp.iterdir()) == before


def test_parse_duration():
    assert parse_duration("90") == 90 and parse_duration("10m") == 600 and parse_duration("1.5h") == 5400
    with pytest.raises(TabgenError):
        parse_duration("-3")


def test_library_errors_name_parameters_and_the_cli_names_its_flags(in_tmp):
    from tabgen import Synthesizer

    with pytest.raises(TabgenError, match="start the fit without resume=True"):
        Synthesizer(checkpoint=in_tmp / "none.ckpt").fit(make_mixed_frame(50), resume=True)
    r = run("fit", "data.csv", "--resume", "-q")
    assert r.exit_code == 2 and "start the fit without --resume" in r.output


@pytest.mark.parametrize("args", [
    ["fit", "data.csv", "-o", "data.csv"],
    ["fit", "link.csv", "-o", "./data.csv"],
    ["sample", "-m", "m.tabgen", "--given-file", "data.csv", "-o", "link.csv"],
    ["sample", "-m", "m.tabgen", "-o", "m.tabgen"],
    ["impute", "data.csv", "-m", "m.tabgen", "-o", "data.csv"],
    ["evaluate", "data.csv", "other.csv", "--json", "other.csv"],
], ids=["fit", "fit-symlink", "sample-given-file", "sample-model", "impute", "evaluate"])
def test_an_output_that_is_an_input_is_refused_before_any_work(in_tmp, args):
    (in_tmp / "link.csv").symlink_to(in_tmp / "data.csv")
    (in_tmp / "m.tabgen").write_bytes(b"a model")
    (in_tmp / "other.csv").write_text("a\n1\n")
    before = {p.name: p.read_bytes() for p in in_tmp.iterdir()}
    r = run(*args)
    assert r.exit_code == 2 and "would replace what is read" in r.output, r.output
    assert {p.name: p.read_bytes() for p in in_tmp.iterdir()} == before


def test_fit_does_not_replace_a_file_that_is_not_a_model(in_tmp):
    (in_tmp / "rows.csv").write_text("a,b\n1,2\n")
    r = run("fit", "data.csv", "-o", "rows.csv", "--time-budget", "2", "-q")
    assert r.exit_code == 2 and r.output == (
        "error: rows.csv exists and is not a tabgen model: the fit would replace it; choose another -o path\n")
    assert (in_tmp / "rows.csv").read_text() == "a,b\n1,2\n"


def test_ctrl_c_in_a_refit_keeps_the_earlier_model_and_the_checkpoint(in_tmp):
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert run("fit", "data.csv", "-o", "m.tabgen", "--time-budget", "2", "-q").exit_code == 0
    again = run("fit", "data.csv", "-o", "m.tabgen", "--time-budget", "2", "-q")
    assert again.exit_code == 0 and "replaces the model that was there" in again.output
    earlier = (in_tmp / "m.tabgen").read_bytes()
    # A real SIGINT, in a process of its own, during the diffusion phase (where a model to save exists).
    script = """
import os, signal
import tabgen.train as train
signal.signal(signal.SIGINT, signal.default_int_handler)  # a job started in the background inherits SIGINT ignored
from conftest import fast_config
from tabgen.cli import main
from tabgen.config import SynthesizerConfig

SynthesizerConfig.for_device = classmethod(lambda cls, device: fast_config())
end_epoch = train._Loop.end_epoch
def interrupting(self, *args, **kwargs):
    stop = end_epoch(self, *args, **kwargs)
    if self.name == "diffusion" and self.result.epochs == 2:
        os.kill(os.getpid(), signal.SIGINT)
    return stop
train._Loop.end_epoch = interrupting
main(["fit", "data.csv", "-o", "m.tabgen", "-q"])
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    r = subprocess.run([sys.executable, "-c", script], cwd=in_tmp, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 130, r.stderr
    assert "m.tabgen is kept as it was; continue with: tabgen fit data.csv -o m.tabgen --resume" in r.stderr
    assert (in_tmp / "m.tabgen").read_bytes() == earlier and (in_tmp / "m.tabgen.ckpt").exists()
