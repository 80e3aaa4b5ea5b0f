"""Tables streamed from disk: the sample, the chunks, and a fit that never holds the table whole."""

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabgen import Synthesizer
from tabgen.distributed import Ranks
from tabgen.errors import TabgenError
from tabgen.io import stream
from tabgen.io.stream import TableStream, stream_if_too_large
from tabgen.protection import RARE

from conftest import fast_config


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"row": np.arange(n), "x": x, "y": np.round(2 * x + rng.normal(size=n), 3),
                         "kind": np.where(x > 0, "up", "down")})


def _parquet(df: pd.DataFrame, path, row_group: int) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(stream, "CHUNK_ROWS", 100)


def test_the_sample_is_uniform_reproducible_and_numbers_its_rows(tmp_path, small_chunks):
    df = _table(5000)
    _parquet(df, tmp_path / "t.parquet", row_group=700)
    source = TableStream(tmp_path / "t.parquet")
    assert source.n_rows == 5000 and len(source.parts) == 8
    sample, numbers = source.sample(1000, seed=1)
    assert len(sample) == 1000 and len(set(numbers)) == 1000
    assert (sample["row"].to_numpy() == numbers).all()  # each sampled row is the row its number names
    assert not (np.diff(numbers) > 0).all()  # in random order: its first rows are the validation rows
    again, _ = source.sample(1000, seed=1)
    pd.testing.assert_frame_equal(sample, again)
    # Uniform: every tenth of the table gives about a tenth of the sample.
    counts = np.bincount(numbers // 500, minlength=10)
    assert counts.min() > 60 and counts.max() < 140
    whole, _ = source.sample(10_000, seed=1)
    assert sorted(whole["row"]) == list(range(5000))


def test_chunks_give_each_rank_its_share_of_every_row_but_the_left_out(tmp_path, small_chunks):
    _parquet(_table(3000), tmp_path / "t.parquet", row_group=500)
    source = TableStream(tmp_path / "t.parquet")
    leave_out = np.sort(np.random.default_rng(0).choice(3000, 200, replace=False))
    shares = []
    for rank in range(2):
        chunks = source.chunks(seed=5, ranks=Ranks(rank, 2), leave_out=leave_out)
        numbers = []
        for rows, frame in itertools.islice(chunks, 15):  # one pass: the rank's 3 row groups of 5 chunks
            assert (frame["row"].to_numpy() == rows).all()
            numbers.extend(rows)
        assert len(numbers) == len(set(numbers))
        shares.append(set(numbers))
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(range(3000)) - set(leave_out)


def test_a_pass_goes_through_the_parts_in_a_new_order_and_mixes_them(tmp_path, small_chunks):
    _parquet(_table(4000), tmp_path / "t.parquet", row_group=500)
    chunks = TableStream(tmp_path / "t.parquet").chunks(seed=0)
    parts = [rows[0] // 500 for rows, _ in itertools.islice(chunks, 80)]
    first, second = parts[:40], parts[40:]
    assert sorted(set(first)) == list(range(8)) and first != second
    assert len(set(first[:4])) == stream.OPEN_PARTS  # the first chunks come from several row groups


def test_a_folder_of_partitions_and_a_csv_stream_alike(tmp_path, small_chunks):
    df = _table(1200)
    df["year"] = np.where(df["row"] < 600, 2020, 2021)
    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "parts", partition_cols=["year"])
    sample, _ = TableStream(tmp_path / "parts").sample(300, seed=0)
    assert set(sample.columns) == set(df.columns) and set(sample["year"].astype(int)) == {2020, 2021}
    df.to_csv(tmp_path / "t.csv", sep=";", index=False)
    source = TableStream(tmp_path / "t.csv")
    assert source.n_rows is None
    sample, numbers = source.sample(300, seed=0)
    assert source.n_rows == 1200 and (sample["row"].to_numpy() == numbers).all()


def test_which_tables_are_streamed(tmp_path):
    _parquet(_table(3000), tmp_path / "t.parquet", row_group=1000)
    _table(3000).to_csv(tmp_path / "t.csv", index=False)
    opened = stream_if_too_large(tmp_path / "t.parquet", 2000)
    assert opened.n_rows == 3000 and stream_if_too_large(tmp_path / "t.parquet", 3000) is None
    assert stream_if_too_large(tmp_path / "t.csv", 2000).sep == "," and stream_if_too_large(tmp_path / "t.csv", 5000) is None
    (tmp_path / "folder").mkdir()
    _parquet(_table(100), tmp_path / "folder" / "part0.parquet", row_group=100)
    assert stream_if_too_large(tmp_path / "folder", 10**9).n_rows == 100
    (tmp_path / "text").mkdir()
    _table(100).to_csv(tmp_path / "text" / "part1.csv", index=False)
    with pytest.raises(TabgenError, match="folder holding text tables such as part1.csv: tabgen reads a folder of Parquet"):
        stream_if_too_large(tmp_path / "text", 10**9)


def test_a_streamed_fit_trains_on_every_row_and_samples_like_any_other(tmp_path, small_chunks):
    df = _table(3000).drop(columns="row")
    # A category of few rows: grouped as _RARE_ in the sample and in every chunk, or left out of
    # training where the sample has not seen it, never an error.
    df.loc[2990:, "kind"] = "rare"
    _parquet(df, tmp_path / "t.parquet", row_group=600)
    config = fast_config()
    config.stream_sample_rows = 500
    syn = Synthesizer(config=config, progress=False, seed=0).fit(tmp_path / "t.parquet")
    assert syn.n_rows_ == 3000
    assert syn.vae_result_.steps == config.vae.max_steps and syn.diffusion_result_.steps == config.diffusion.max_steps
    out = syn.sample(400)
    assert list(out.columns) == list(df.columns) and len(out) == 400
    assert set(out["kind"]) <= {"up", "down", RARE}
    again = Synthesizer(config=config, progress=False, seed=0).fit(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(out, again.sample(400))


def test_streamed_rows_serve_each_pool_the_passes_asked_then_read_on(monkeypatch):
    import torch

    from tabgen import batches
    from tabgen.batches import StreamedRows
    chunks = ((np.arange(i * 10, i * 10 + 10), pd.DataFrame({"v": np.arange(i * 10, i * 10 + 10)})) for i in itertools.count())
    rows = StreamedRows(chunks, lambda f: (torch.tensor(f["v"].to_numpy()),), n_rows=10**6, pool_chunks=2, passes=3)
    served = [int(v) for (batch,) in itertools.islice(rows.epoch(5), 16) for v in batch]
    # Each pool of two chunks (20 rows) is served three times over, in a new order each time, then the next.
    assert sorted(served[:60]) == sorted(list(range(20)) * 3) and served[:20] != served[20:40]
    assert set(served[60:]) <= set(range(20, 40))
    monkeypatch.setattr(batches, "MAX_EMPTY_CHUNKS", 5)
    nothing = StreamedRows(((None, pd.DataFrame({"v": [1]})) for _ in itertools.count()), lambda f: None, 10, 2)
    with pytest.raises(TabgenError, match="none of 5 chunks"):
        next(nothing.epoch(4))


def test_a_streamed_table_keeps_the_rules_found_in_its_sample(tmp_path, small_chunks):
    rng = np.random.default_rng(0)
    start = rng.integers(0, 100, 3000)
    df = pd.DataFrame({"start": start, "end": start + rng.integers(0, 50, 3000), "kind": rng.choice(["x", "y"], 3000)})
    _parquet(df, tmp_path / "t.parquet", row_group=600)
    config = fast_config()
    config.stream_sample_rows = 500
    syn = Synthesizer(config=config, progress=False, seed=0).fit(tmp_path / "t.parquet")
    assert "end >= start" in str(syn.rules_)  # learned as a gap: a column the chunks get as the sample did
    out = syn.sample(300)
    assert (out["end"] >= out["start"]).all()
