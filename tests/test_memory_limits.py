"""Memory is bounded and stated: tables larger than the machine reads, wide tables, many categories."""

import gzip
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tabgen.io.memory as memory
from tabgen.cli import main
from tabgen.config import MAX_ATTENTION_CELLS, MAX_LOGIT_CELLS, SynthesizerConfig
from tabgen.errors import TabgenError
from tabgen.schema import infer_schema
from tabgen.transform import TableTransform


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _larger_than_memory(tmp_path, monkeypatch, name):
    df = pd.DataFrame({"a": np.arange(20_000), "b": np.resize(["x", "y", "z"], 20_000)})
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    # Free memory of 80 KB: an eighth of it, 10 KB, is less than the table (a compressed one is cut
    # off while it is decompressed).
    monkeypatch.setattr(memory, "free_memory_bytes", lambda: 80_000)
    return path


def test_a_compressed_table_larger_than_memory_allows_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = _larger_than_memory(tmp_path, monkeypatch, "t.csv.gz")
    before = path.read_bytes()
    r = run("fit", str(path), "-o", str(tmp_path / "m.tabgen"))
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "more than the 0.0 MB tabgen reads on this machine" in r.output and "fit a sample of its rows" in r.output
    assert path.read_bytes() == before and not (tmp_path / "m.tabgen").exists()


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_a_table_larger_than_memory_allows_is_streamed(tmp_path, monkeypatch, name):
    path = _larger_than_memory(tmp_path, monkeypatch, name)
    r = run("fit", str(path), "-o", str(tmp_path / "m.tabgen"), "--time-budget", "3s", "-q")
    assert r.exit_code == 0 and "Fitted 20,000 rows" in r.output, r.output
    assert (tmp_path / "m.tabgen").exists()


def test_a_decompression_bomb_stops_at_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"a,b\n")
        for _ in range(200):
            f.write(b"1,2\n" * 25_000)  # 20 MB of text in a file of about 20 KB
    monkeypatch.setattr(memory, "free_memory_bytes", lambda: 8_000_000)
    with pytest.raises(TabgenError, match="or more once decompressed, more than the 1.0 MB"):
        from tabgen.io import read_table

        read_table(path)


def test_batches_are_cut_for_wide_tables_and_many_categories_and_left_alone_otherwise():
    config = SynthesizerConfig()
    assert config.for_table(10, [5] * 5) is config
    wide = config.for_table(600, [])
    assert wide.vae.batch_size == MAX_ATTENTION_CELLS // 600**2 < config.vae.batch_size
    many = config.for_table(2, [40_000])
    assert many.sampler.batch_size == many.sampler.calibration_rows == MAX_LOGIT_CELLS // 40_000
    assert config.sampler.batch_size == 10_000  # the original is not changed


def test_past_the_learned_columns_and_categories_a_fit_is_refused_naming_the_limit(monkeypatch):
    import tabgen.transform as transform

    monkeypatch.setattr(transform, "MAX_LEARNED_TOKENS", 5)
    df = pd.DataFrame({f"c{i}": np.arange(100.0) * (i + 1) % 7 + 0.5 * i for i in range(6)})
    with pytest.raises(TabgenError, match="has 6 columns to learn .* more than the 5 tabgen learns"):
        TableTransform(infer_schema(df)).fit(df)
    monkeypatch.setattr(transform, "MAX_LEARNED_CLASSES", 10)
    df = pd.DataFrame({"a": np.resize(list("abcdefghijkl"), 120)})
    with pytest.raises(TabgenError, match="hold 12 categories to learn in all, more than the 10"):
        TableTransform(infer_schema(df)).fit(df)


def test_running_out_of_memory_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    from tabgen.synthesizer import Synthesizer

    pd.DataFrame({"a": np.arange(200) % 9, "b": np.arange(200) % 4}).to_csv(tmp_path / "d.csv", index=False)

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Synthesizer, "fit_and_save", exhausted)
    r = run("fit", str(tmp_path / "d.csv"), "-o", str(tmp_path / "m.tabgen"))
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("error: this machine ran out of memory in tabgen fit")


def test_a_column_of_100000_categories_in_200000_rows_fits_in_its_budget_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    n = 200_000
    pd.DataFrame({
        "code": [f"k{i}" for i in rng.permutation(np.resize(np.arange(100_000), n))],
        "amount": rng.lognormal(3, 1, n).round(2),
        "kind": rng.choice(["a", "b", "c"], n),
    }).to_csv(tmp_path / "big.csv", index=False)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([sys.executable, "-m", "tabgen", "fit", "big.csv", "--time-budget", "20s", "-q",
                        "--no-value-protection"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "column 'code' has 100,000 categories" in r.stderr and "as one group" in r.stderr
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux, the largest child's
    assert max(peak, before) < 4 * 2**20
    r = subprocess.run([sys.executable, "-m", "tabgen", "sample", "-n", "2000", "-o", "rows.csv", "-q"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert rows["code"].nunique() > 1000  # the grouped categories are drawn, not one stand-in
