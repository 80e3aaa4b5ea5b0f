"""Sampling to a folder of Parquet parts: exact row counts, one schema, fresh identifiers, and the
per-process (torchrun rank) shares, seeds and identifier ranges."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import tabgen.io.parts as parts
from tabgen import Synthesizer, TabgenError
from tabgen.cli import main
from tabgen.distributed import Ranks
from tabgen.errors import TabgenWarning
from tabgen.io.parts import part_files, write_parts

from conftest import fast_config, make_mixed_frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny model with an integer and a text identifier column; saved, for the command line."""
    df = make_mixed_frame(300)
    df.insert(0, "id", np.arange(1, 301))
    df["code"] = [f"C{i:04d}" for i in range(300)]
    with pytest.warns(TabgenWarning, match="identifier"):
        syn = Synthesizer(config=fast_config(), progress=False).fit(df)
    path = tmp_path_factory.mktemp("model") / "m.tabgen"
    syn.save(path)
    return syn, path


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(parts, "ROWS_PER_PART", 2500)
    monkeypatch.setattr(parts, "ROWS_PER_GROUP", 1000)


def test_a_folder_gets_parts_of_exactly_n_rows_with_one_schema(fitted, small_parts, tmp_path):
    syn, _ = fitted
    assert syn.sample_to(f"{tmp_path / 'out'}/", 6001, seed=3) == 6001
    files = part_files(tmp_path / "out")
    assert [f.name for f in files] == [f"part-00000-0000{i}.parquet" for i in range(3)]
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [2500, 2500, 1001]
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 3
    assert all(pq.read_schema(f).equals(pq.read_schema(files[0])) for f in files)
    assert sorted(os.listdir(tmp_path / "out")) == [f.name for f in files]  # no temporary file left
    rows = pd.read_parquet(tmp_path / "out")
    assert rows["id"].is_unique and rows["code"].is_unique
    # The same rows as one frame with the same seed: the folder only changes where they go.
    expected = syn.sample(6001, seed=3)
    pd.testing.assert_frame_equal(rows.isna(), expected.isna())
    pd.testing.assert_frame_equal(rows.fillna(0), expected.fillna(0))


def test_a_folder_with_files_in_it_is_refused_and_left_as_it_was(fitted, tmp_path):
    syn, _ = fitted
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TabgenError, match="is not empty .*'notes.txt'"):
        syn.sample_to(tmp_path, 10)
    assert os.listdir(tmp_path) == ["notes.txt"]
    with pytest.raises(TabgenError, match="is a file, not a folder"):
        syn.sample_to(f"{tmp_path / 'notes.txt'}/", 10)
    with pytest.raises(TabgenError, match="does not exist"):
        syn.sample_to(f"{tmp_path / 'no' / 'out'}/", 10)


def test_a_failed_sample_leaves_no_folder_behind(fitted, tmp_path):
    syn, _ = fitted
    with pytest.raises(TabgenError, match="nope"):
        syn.sample_to(f"{tmp_path / 'out'}/", 10, given={"nope": 1})
    assert not (tmp_path / "out").exists()


def test_a_column_missing_in_the_first_rows_keeps_one_type_in_every_part(small_parts, tmp_path):
    first = pd.DataFrame({"city": [None] * 2500, "n": [None] * 2500, "x": np.nan})
    later = pd.DataFrame({"city": ["Oslo"] * 10, "n": [3] * 10, "x": 1.0})
    rows, files = write_parts([first, later], tmp_path, values={"n": [1, 2]})
    assert rows == 2510 and len(files) == 2
    schemas = [pq.read_schema(f) for f in files]
    assert [str(s.field(c).type) for s in schemas for c in ("city", "n", "x")] == ["string", "int64", "double"] * 2
    assert pd.read_parquet(tmp_path)["city"].iloc[-1] == "Oslo"


def test_an_interrupted_write_keeps_the_complete_parts_and_no_temporary_file(small_parts, tmp_path):
    def batches():
        for _ in range(4):
            yield pd.DataFrame({"x": np.arange(1000.0)})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_parts(batches(), tmp_path)
    assert os.listdir(tmp_path) == ["part-00000-00000.parquet"]
    assert pq.ParquetFile(tmp_path / "part-00000-00000.parquet").metadata.num_rows == 2500


def test_ranks_write_their_shares_with_their_own_seeds_and_identifiers(fitted, tmp_path):
    """Two processes' work, run one after the other (torchrun runs them at once into one folder)."""
    syn, _ = fitted
    frames = []
    for rank in (0, 1):
        folder = f"{tmp_path / f'rank{rank}'}/"
        assert syn.sample_to(folder, 1001, seed=7, ranks=Ranks(rank, 2)) == 501 - rank
        assert [f.name for f in part_files(folder)] == [f"part-0000{rank}-00000.parquet"]
        frames.append(pd.read_parquet(folder))
    both = pd.concat(frames, ignore_index=True)
    assert len(both) == 1001 and both["id"].is_unique and both["code"].is_unique
    assert frames[1]["id"].min() == frames[0]["id"].max() + 1  # rank 1 numbers after rank 0's rows
    assert not np.allclose(frames[0]["x"].head(50), frames[1]["x"].head(50))  # different streams
    again = f"{tmp_path / 'again'}/"
    syn.sample_to(again, 1001, seed=7, ranks=Ranks(1, 2))
    pd.testing.assert_frame_equal(pd.read_parquet(again), frames[1])  # a rank's stream is reproducible


def test_given_rows_are_split_between_ranks(fitted, tmp_path):
    syn, _ = fitted
    given = pd.DataFrame({"group": ["a", "b", "c", "a", "b"]})
    for rank, expected in ((0, ["a", "b", "c"]), (1, ["a", "b"])):
        syn.sample_to(f"{tmp_path / str(rank)}/", given=given, ranks=Ranks(rank, 2))
        assert pd.read_parquet(tmp_path / str(rank))["group"].tolist() == expected


def test_a_file_under_torchrun_is_refused(fitted, tmp_path, monkeypatch):
    syn, path = fitted
    with pytest.raises(TabgenError, match="give a folder"):
        syn.sample_to(tmp_path / "x.csv", 10, ranks=Ranks(0, 2))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(TabgenError, match="give a folder"):
        syn.sample_to(tmp_path / "x.csv", 10)
    r = CliRunner().invoke(main, ["sample", "-m", str(path), "-n", "10", "-o", str(tmp_path / "x.csv"), "-q"])
    assert r.exit_code == 2 and "give a folder, such as -o out/" in r.output
    assert not (tmp_path / "x.csv").exists()


def test_the_command_writes_parts_and_says_how_many(fitted, small_parts, tmp_path):
    _, path = fitted
    r = CliRunner().invoke(main, ["sample", "-m", str(path), "-n", "6000", "-o", f"{tmp_path / 'out'}/", "-q"])
    assert r.exit_code == 0, r.output
    assert "Wrote 6,000 rows in 3 part files to" in r.output
    r = CliRunner().invoke(main, ["sample", "-m", str(path), "-n", "5", "-o", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 2 and "is not empty" in r.output


def test_ctrl_c_in_the_command_says_which_parts_are_kept(fitted, small_parts, tmp_path, monkeypatch):
    _, path = fitted
    sample_batches = Synthesizer.sample_batches

    def interrupted(self, *args, **kwargs):
        yield from sample_batches(self, 3000, seed=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(Synthesizer, "sample_batches", interrupted)
    r = CliRunner().invoke(main, ["sample", "-m", str(path), "-n", "6000", "-o", f"{tmp_path / 'out'}/", "-q"])
    assert r.exit_code == 130
    assert "interrupted: 1 complete part file is in" in r.output and "(2,500 rows)" in r.output
    assert os.listdir(tmp_path / "out") == ["part-00000-00000.parquet"]


def test_torchrun_ranks_write_one_folder_of_exact_rows(fitted, tmp_path):
    """Two real processes under torchrun (gloo on CPU): a few seconds."""
    _, path = fitted
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "tabgen", "sample", "-m", str(path), "-n", "2001", "-o", f"{tmp_path / 'out'}/", "-q"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("Wrote 2,001 rows in 2 part files") == 1  # rank 0 alone says it
    files = [f.name for f in part_files(tmp_path / "out")]
    assert files == ["part-00000-00000.parquet", "part-00001-00000.parquet"]
    rows = pd.read_parquet(tmp_path / "out")
    assert len(rows) == 2001 and rows["id"].is_unique and rows["code"].is_unique
