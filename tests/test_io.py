import os
import pickle

import pytest
import torch

from tabgen import Synthesizer, TabgenError
from tabgen.io import MODEL_FORMAT_VERSION, atomic_write, load_model, read_table, save_model


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_model_round_trip_and_header(tmp_path):
    path = tmp_path / "m.tabgen"
    save_model(path, {"a": [1, 2]}, {"w": torch.arange(3.0)})
    header, tensors = load_model(path)
    assert header == {"a": [1, 2]} and torch.equal(tensors["w"], torch.arange(3.0))


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.tabgen"
    path.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(TabgenError, match="not a tabgen model"):
        Synthesizer.load(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"hello", b"\xff" * 100])
def test_files_that_are_not_models_are_refused(tmp_path, content):
    path = tmp_path / "x.tabgen"
    path.write_bytes(content)
    with pytest.raises(TabgenError, match="not a tabgen model"):
        load_model(path)


def test_truncated_newer_and_foreign_models_are_refused(tmp_path):
    path = tmp_path / "m.tabgen"
    save_model(path, {}, {"w": torch.zeros(1000)})
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(TabgenError, match="not a tabgen model"):
        load_model(path)

    from safetensors.torch import save_file

    newer = {"format": "tabgen", "format_version": str(MODEL_FORMAT_VERSION + 1), "header": "{}"}
    save_file({"w": torch.zeros(1)}, str(path), metadata=newer)
    with pytest.raises(TabgenError, match="newer tabgen"):
        load_model(path)
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(TabgenError, match="not a tabgen model"):
        load_model(path)


def test_a_model_missing_weights_is_refused(tmp_path):
    save_model(tmp_path / "m.tabgen", {"seed": 0}, {})
    with pytest.raises(TabgenError, match="damaged"):
        Synthesizer.load(tmp_path / "m.tabgen")


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), ("", "empty"), ("a,b\n", None)],
)
def test_read_table_errors(tmp_path, content, message):
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_text(content)
    if message is None:
        assert len(read_table(path)) == 0  # header only: read fine, refused later as "no rows"
    else:
        with pytest.raises(TabgenError, match=message):
            read_table(path)


def test_sample_to_streams_csv_or_writes_parquet_and_counts_the_rows(tmp_path):
    from conftest import fast_config, make_mixed_frame

    syn = Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame(120))
    syn.config_.sampler.batch_size = 7
    assert syn.sample_to(tmp_path / "a.csv", 20, seed=1) == 20
    expected = syn.sample(20, seed=1)
    assert read_table(tmp_path / "a.csv").shape == expected.shape
    assert syn.sample_to(tmp_path / "a.parquet", seed=1) == 120  # by default, as many rows as the table had
    assert len(read_table(tmp_path / "a.parquet")) == 120
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "a.parquet"]  # no temporary file left


def test_the_model_file_holds_the_token_layout(tmp_path):
    from conftest import fast_config, make_mixed_frame

    syn = Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame(120))
    syn.save(tmp_path / "m.tabgen")
    header, _ = load_model(tmp_path / "m.tabgen")
    layout = syn.codec_.layout
    assert header["layout"] == layout.to_dict() and layout.n_tokens * syn.config_.vae.d_token == header["latent_dim"]
    header["layout"]["gappy"] = []  # a file whose layout disagrees with its schema is refused
    save_model(tmp_path / "bad.tabgen", header, load_model(tmp_path / "m.tabgen")[1])
    with pytest.raises(TabgenError, match="damaged or incomplete"):
        Synthesizer.load(tmp_path / "bad.tabgen")
