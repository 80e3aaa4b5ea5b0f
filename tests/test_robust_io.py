"""Files as users really have them: exports from Excel and databases, wrong files, damaged models,
and runs that are killed halfway. Each is either read right or refused with one clear line."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save as save_safetensors

from tabgen import Synthesizer, TabgenError, TabgenWarning
from tabgen.cli import main
from tabgen.io import load_model, read_table, save_model, sniff_separator, write_table

from conftest import fast_config, make_mixed_frame

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ----------------------------------------------------------------------------------------------------
# Reading what real exports look like


@pytest.mark.parametrize(
    "name, content, columns, rows",
    [
        ("bom.csv", "\ufeffcity,n\nZürich,1\n東京,2\n".encode("utf-8"), ["city", "n"], [["Zürich", 1], ["東京", 2]]),
        ("quoted.csv", 'name,city\n"Smith, J",Oslo\n"Lee, K","Lima, Peru"\n',
         ["name", "city"], [["Smith, J", "Oslo"], ["Lee, K", "Lima, Peru"]]),
        ("newline.csv", 'id,note\n1,"two\nlines"\n2,one\n', ["id", "note"], [[1, "two\nlines"], [2, "one"]]),
        # Excel where the comma is the decimal mark: semicolons between fields, commas in numbers.
        ("excel_de.csv", "preis;ort;n\n1,5;Köln;2\n-0,25;Bonn;\n", ["preis", "ort", "n"],
         [[1.5, "Köln", 2.0], [-0.25, "Bonn", None]]),
        ("semicolon_dot.csv", "a;b\n1.5;x\n2.5;y\n", ["a", "b"], [[1.5, "x"], [2.5, "y"]]),
        ("semicolon_quoted.csv", 'a;b\n"x;y";1\n"z,w";2\n', ["a", "b"], [["x;y", 1], ["z,w", 2]]),
        ("tabs.tsv", "a\tb\n1\tx\n2\ty\n", ["a", "b"], [[1, "x"], [2, "y"]]),
        ("pipes.txt", "a|b\n1|x\n2|y\n", ["a", "b"], [[1, "x"], [2, "y"]]),
        ("one_column.csv", "x\n1\n2\n", ["x"], [[1], [2]]),
        # Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated.
        ("unicode.txt", "a\tb\n1\tZürich\n".encode("utf-16"), ["a", "b"], [[1, "Zürich"]]),
        ("trailing_sep.csv", "a,b\n1,2,\n3,4,\n", ["a", "b"], [[1, 2], [3, 4]]),
        ("packed.csv.gz", gzip.compress(b"a;b\n1;2\n"), ["a", "b"], [[1, 2]]),
    ],
)
def test_real_exports_are_read_right(tmp_path, name, content, columns, rows):
    df = read_table(write(tmp_path / name, content))
    assert list(df.columns) == columns
    assert df.astype(object).where(df.notna(), None).values.tolist() == rows


def test_an_explicit_separator_overrides_the_sniffed_one(tmp_path):
    path = write(tmp_path / "t.csv", "a,b;c\n1,2;3\n4,5;6\n")
    assert list(read_table(path, sep=";").columns) == ["a,b", "c"]
    assert list(read_table(path, sep=",").columns) == ["a", "b;c"]


@pytest.mark.parametrize(
    "text, sep",
    [
        ("a,b\n1,2\n", ","),
        ("a;b;c\n1,5;2,5;x\n", ";"),
        ("a\tb\n1,5\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('name,comment\nx,"a;b;c"\ny,"d;e"\n', ","),
        ("x\n1\n", ","),  # a single column reads the same with any separator
        ("a,b\n", ","),  # a header alone
    ],
)
def test_sniff_separator(text, sep):
    assert sniff_separator(text) == sep


def test_parquet_is_read_by_suffix_or_content_and_written_by_suffix(tmp_path):
    df = make_mixed_frame(50)
    write_table(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), df)
    # A Parquet file saved under a .csv name is still unmistakably Parquet.
    os.replace(tmp_path / "t.parquet", tmp_path / "t.csv")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), df)
    assert sorted(os.listdir(tmp_path)) == ["t.csv"]


def test_a_failed_parquet_write_leaves_nothing(tmp_path):
    mixed = pd.DataFrame({"a": [1, "x", 2.5]})  # pyarrow cannot type this column
    with pytest.raises(TabgenError, match="as Parquet"):
        write_table(mixed, tmp_path / "out.parquet")
    assert os.listdir(tmp_path) == []


def test_other_encodings_are_refused_with_the_line_and_a_way_out(tmp_path):
    path = write(tmp_path / "windows.csv", "a,b\n1,x\n2,café\n".encode("cp1252"))
    with pytest.raises(TabgenError, match=r"windows.csv is not UTF-8 text \(byte 0xe9 on line 3\).*encoding='cp1252'"):
        read_table(path)
    assert read_table(path, encoding="cp1252")["b"].tolist() == ["x", "café"]
    # Beyond the first lines too: the error comes from the full read, located afterwards.
    late = write(tmp_path / "late.csv", b"a,b\n" + b"1,x\n" * 40_000 + "2,café\n".encode("cp1252"))
    with pytest.raises(TabgenError, match="line 40002"):
        read_table(late)
    with pytest.raises(TabgenError, match="unknown encoding 'klingon'"):
        read_table(path, encoding="klingon")


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + bytes(range(256))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("picture.csv", PNG, r"picture.csv is not a text table \(a PNG image\)"),
        ("noise.csv", bytes((i * 97 + 13) % 256 for i in range(4096)), r"is not a text table \(it holds binary data\)"),
        ("records.csv", json.dumps([{"a": 1}, {"a": 2}]), "is JSON, not a table"),
        ("records.json", "a,b\n1,2\n", "is JSON, not a table"),
        ("book.xlsx", b"PK\x03\x04", "spreadsheet.*CSV UTF-8"),
        ("model.tabgen", b"\x00" * 16, "is a tabgen model, not a table"),
        ("dup.csv", "a,b,a\n1,2,3\n", r"column name 'a' is repeated in the header \(columns 1 and 3\)"),
        ("dup_semicolon.csv", "id;x;y;x\n1;2;3;4\n", r"'x' is repeated in the header \(columns 2 and 4\)"),
        ("unnamed.csv", "a,,\n1,2,3\n", r"columns 2 and 3 have no name"),
        ("empty.csv", "", "is empty"),
        ("blank.csv", "\n\n   \n", "is empty"),
        ("long_row.csv", "a,b\n1,2\n3,4,5\n", r"line 3: 3 fields where the header has 2; quote values"),
        # pandas would make column a the index and shift every value one column to the right.
        ("shifted.csv", "a,b\n1,2,3\n4,5,6\n", r"line 2: 3 fields where the header has 2"),
        ("open_quote.csv", 'a,b\n1,"x\n2,y\n', r"quote \(\"\) opened in data row 1 is never closed"),
        ("fake.parquet", "a,b\n1,2\n", "is not a Parquet file.*rename it to .csv"),
        ("broken.csv.gz", "a,b\n1,2\n", "could not be decompressed"),
    ],
)
def test_what_is_not_a_readable_table_is_refused(tmp_path, name, content, message):
    with pytest.raises(TabgenError, match=message):
        read_table(write(tmp_path / name, content))


def test_rows_with_fewer_fields_than_the_header_are_read_with_a_warning(tmp_path):
    # A writer that leaves out trailing empty cells and a file cut off mid-row look the same.
    path = write(tmp_path / "short.csv", 'a,b,c\n1,2,3\n4\n5,"x\ny"\n7,8,\n')
    with pytest.warns(TabgenWarning, match=r"2 rows have fewer fields than the header's 3 \(lines 3, 4\)"):
        df = read_table(path)
    assert df["a"].tolist() == [1, 4, 5, 7]
    assert df["c"].isna().tolist() == [False, True, True, True]


# ----------------------------------------------------------------------------------------------------
# Damaged model files


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.tabgen"
    Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame()).save(path)
    return path


def test_a_flipped_byte_in_a_saved_model_is_detected(model_file, tmp_path):
    blob = model_file.read_bytes()
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x01  # in the weights: still a valid safetensors file
    write(tmp_path / "m.tabgen", bytes(damaged))
    with pytest.raises(TabgenError, match="is damaged or was modified"):
        Synthesizer.load(tmp_path / "m.tabgen")
    write(tmp_path / "m.tabgen", blob)
    assert Synthesizer.load(tmp_path / "m.tabgen", progress=False).sample(3).shape == (3, 6)


def test_a_flipped_byte_anywhere_is_refused(model_file, tmp_path):
    blob = model_file.read_bytes()
    header_end = 8 + int.from_bytes(blob[:8], "little")
    checksum = blob.index(json.loads(blob[8:header_end])["__metadata__"]["sha256"].encode())
    # The length, the checksum itself, a spread of the JSON header (metadata, tensor offsets) and of
    # the weights: every byte would take half a minute.
    positions = sorted(
        {*range(8), *range(checksum, checksum + 64), *range(8, header_end, 11), *range(header_end, len(blob), len(blob) // 97)}
    )
    path = tmp_path / "m.tabgen"
    for i in positions:
        damaged = bytearray(blob)
        damaged[i] ^= 0x01
        write(path, bytes(damaged))
        with pytest.raises(TabgenError, match="damaged|newer tabgen"):
            load_model(path)


def test_models_without_a_checksum(tmp_path):
    path = tmp_path / "m.tabgen"
    tensors = {"w": torch.arange(3.0)}
    # Format 1 predates the checksum and is still read.
    write(path, save_safetensors(tensors, metadata={"format": "tabgen", "format_version": "1", "header": "{}"}))
    assert load_model(path)[0] == {}
    # From format 2 on, the checksum can only be missing if the file was changed.
    write(path, save_safetensors(tensors, metadata={"format": "tabgen", "format_version": "2", "header": "{}"}))
    with pytest.raises(TabgenError, match="is damaged or was modified"):
        load_model(path)
    save_model(path, {"a": 1}, tensors)
    assert load_model(path)[0] == {"a": 1}


# ----------------------------------------------------------------------------------------------------
# The command line


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_fit_a_semicolon_export_and_sample_parquet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = make_mixed_frame(150)
    df.to_csv("data.csv", sep=";", decimal=",", index=False, encoding="utf-8-sig")
    r = run("fit", "data.csv", "--sep", ";", "--time-budget", "2", "-q")
    assert r.exit_code == 0, r.output
    r = run("sample", "-n", "30", "-o", "out.parquet", "-q")
    assert r.exit_code == 0, r.output
    fake = pd.read_parquet("out.parquet")
    assert len(fake) == 30 and list(fake.columns) == list(df.columns)
    assert fake["x"].dtype == "float64"  # "1,5" was read as a number, not as text
    assert sorted(os.listdir()) == ["data.csv", "data.tabgen", "out.parquet"]


@pytest.mark.parametrize(
    "args, files, message",
    [
        (["fit", "pic.csv"], {"pic.csv": PNG}, "pic.csv is not a text table"),
        (["fit", "dup.csv"], {"dup.csv": "a,b,a\n1,2,3\n"}, "'a' is repeated"),
        (["fit", "w.csv"], {"w.csv": "a,b\n1,é\n".encode("cp1252")}, "--encoding cp1252"),
        (["fit", "data.csv", "--sep", "ab"], {"data.csv": "a,b\n1,2\n"}, "--sep 'ab' is not one separator"),
        (["fit", "data.csv", "--encoding", "klingon"], {"data.csv": "a,b\n1,2\n"}, "unknown encoding"),
        (["fit", "data.csv"], {"data.csv": "a,b\n1,2\n3,4,5\n"}, "line 3"),
        (["evaluate", "real.csv", "fake.csv"], {"real.csv": "a,b\n1,2\n", "fake.csv": PNG}, "fake.csv is not a text table"),
    ],
)
def test_bad_files_exit_2_with_one_line_and_write_nothing(tmp_path, monkeypatch, args, files, message):
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        write(tmp_path / name, content)
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.startswith("error: ")
    assert pd.Series([r.output]).str.contains(message, regex=True).all(), r.output
    assert sorted(os.listdir(tmp_path)) == sorted(files)


def test_the_cli_restores_the_signal_handlers_it_sets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    run("sample", "-n", "1")  # fails (no model): the handler must go away all the same
    assert signal.getsignal(signal.SIGTERM) is before


def test_help_names_the_file_options():
    assert "--sep" in run("fit", "--help").output and "--encoding" in run("evaluate", "--help").output
    assert "Parquet" in run("sample", "--help").output


# ----------------------------------------------------------------------------------------------------
# Killed runs: the previous output survives


def _default_signals() -> None:
    # An ignored signal stays ignored across exec (a suite run under nohup) and tabgen respects that.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _start_sampling(model_file: Path, folder: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tabgen", "sample", "-n", "2000000", "-o", "out.csv", "-m", str(model_file), "-q"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_default_signals,
    )


def _wait_for_partial_output(process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        temps = [p for p in folder.glob(".out.csv.*.tmp") if p.stat().st_size > 0]
        if temps:
            return
        if process.poll() is not None:
            pytest.fail(f"tabgen ended before writing: {process.stderr.read().decode()}")
        time.sleep(0.1)
    process.kill()
    pytest.fail("no temporary output appeared within 90 s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_sample_keeps_the_previous_file_and_leaves_no_temporary(model_file, tmp_path, sig):
    previous = b"the,previous\nrun's,output\n"
    write(tmp_path / "out.csv", previous)
    process = _start_sampling(model_file, tmp_path)
    _wait_for_partial_output(process, tmp_path)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert (tmp_path / "out.csv").read_bytes() == previous
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]


def test_a_killed_sample_keeps_the_previous_file(model_file, tmp_path):
    """SIGKILL runs no code at all, so the temporary file stays behind (a hidden ``.out.csv.*.tmp``,
    safe to delete); the target is untouched because it is only ever replaced by a complete file."""
    previous = b"the,previous\nrun's,output\n"
    write(tmp_path / "out.csv", previous)
    process = _start_sampling(model_file, tmp_path)
    _wait_for_partial_output(process, tmp_path)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "out.csv").read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir() if p.name != "out.csv"][0].startswith(".out.csv.")


def test_sampling_to_a_closed_pipe_stops_quietly(model_file, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tabgen", "sample", "-n", "100000", "-o", "-", "-m", str(model_file), "-q"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout.readline().startswith(b"group,x,count")
    process.stdout.close()  # as `tabgen sample -o - | head -1` does
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr, stderr
