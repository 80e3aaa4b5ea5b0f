"""Fits on several processes (torchrun, gloo on CPUs): every rank ends with the same model, the same
as one process's at equal total batch and steps, and rank 0 alone writes the model file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from distributed_fit import fitted, summary, weights

from tabgen import Synthesizer
from tabgen.cli import main
from tabgen.distributed import Ranks

from conftest import make_mixed_frame

TESTS = Path(__file__).parent


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_a_share_of_rows_adds_up_exactly(n):
    shares = [Ranks(rank, 3).share(n) for rank in range(3)]
    assert sum(count for _, count in shares) == n
    assert [offset for offset, _ in shares] == [0, shares[0][1], shares[0][1] + shares[1][1]]
    assert max(c for _, c in shares) - min(c for _, c in shares) <= 1


def test_two_ranks_end_alike_and_like_one_process(tmp_path):
    done = _torchrun(str(TESTS / "distributed_fit.py"), str(tmp_path / "rank"), str(tmp_path / "m.tabgen"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # the same weights, losses and rows on both ranks
    one = summary(fitted(False))
    assert ranks[0]["alone"] == one["weights"] != ranks[0]["weights"]
    assert one["steps"] == ranks[0]["steps"]
    # Not the same numbers (each rank draws its own batches and noise), but the same training.
    for key, tolerance in (("vae_loss", 0.15), ("diffusion_loss", 0.15)):
        assert abs(one[key] - ranks[0][key]) <= tolerance * one[key], (key, one[key], ranks[0][key])
    assert abs(one["a_share"] - ranks[0]["a_share"]) < 0.1
    # Rank 0's file is the model every rank holds, and samples on one CPU.
    loaded = Synthesizer.load(tmp_path / "m.tabgen", device="cpu", progress=False)
    assert weights(loaded) == ranks[0]["weights"]
    assert float(loaded.sample(2000, seed=1)["x"].mean()) == ranks[0]["x_mean"]


def test_a_fit_goes_on_from_its_checkpoint_when_a_rank_dies(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS), "DIE_AFTER": "6"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
               str(TESTS / "distributed_fit.py"), str(tmp_path / "rank"), str(tmp_path / "m.tabgen")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 resumed" in done.stderr and "rank 1 resumed" in done.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and ranks[0]["steps"][1] == 1500
    assert (tmp_path / "m.tabgen").exists() and not (tmp_path / "m.tabgen.ckpt").exists()


def test_the_command_fits_on_two_processes(tmp_path):
    make_mixed_frame(600).to_csv(tmp_path / "t.csv", index=False)
    done = _torchrun("-m", "tabgen", "fit", "t.csv", "--distributed", "--time-budget", "8s", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("Fitted 600 rows") == 1 and "2 processes on cpu" in done.stderr
    assert (tmp_path / "t.tabgen").exists() and not (tmp_path / "t.tabgen.ckpt").exists()
    assert len(Synthesizer.load(tmp_path / "t.tabgen", device="cpu", progress=False).sample(50)) == 50


def test_distributed_without_torchrun_is_a_one_line_error(tmp_path):
    make_mixed_frame(50).to_csv(tmp_path / "t.csv", index=False)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "t.csv"), "--distributed"])
    assert result.exit_code == 2 and "torchrun" in result.output and "Traceback" not in result.output
