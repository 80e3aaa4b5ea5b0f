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

    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "tabgen", "format_version": str(MODEL_FORMAT_VERSION + 1), "header": "{}"})
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
