"""The HTML report, the atomic writer and the ``tabgen evaluate`` command."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tabgen.cli import main
from tabgen.evaluation import evaluate, write_report


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, size=n),
        "income": np.exp(x + 10),
        "city": rng.choice([f"city {i}" for i in range(30)], size=n),
        "label": np.where(x + rng.normal(size=n) > 0, "yes", "no"),
    })
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = np.nan
    return frame


def test_report_is_one_self_contained_file(tmp_path):
    real, synthetic = table(300, 0), table(300, 1)
    result = evaluate(real, synthetic, progress=False, metrics=["fidelity"])
    path = write_report(result, real, synthetic, tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # one figure per column plus the heat map, all inline
    assert page.count('src="data:image/png;base64,') == len(real.columns) + 1
    assert "http://" not in page and "https://" not in page
    assert "Trend error" in page and "real-data floor" in page
    assert os.listdir(tmp_path) == ["report.html"]


def test_a_failed_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    real, synthetic = table(100, 0), table(100, 1)
    result = evaluate(real, synthetic, progress=False, metrics=["fidelity"])
    target = tmp_path / "report.html"
    target.write_text("previous report")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_report(result, real, synthetic, target)
    assert target.read_text() == "previous report"
    assert os.listdir(tmp_path) == ["report.html"]


@pytest.fixture
def csv_files(tmp_path):
    paths = {}
    for seed, name in enumerate(["real", "synthetic", "holdout"]):
        paths[name] = tmp_path / f"{name}.csv"
        table(200, seed).to_csv(paths[name], index=False)
    return paths


def run(*args: str):
    return CliRunner().invoke(main, ["evaluate"] + [str(a) for a in args])


def test_cli_prints_the_table_and_writes_json_and_report(csv_files, tmp_path):
    outcome = run(csv_files["real"], csv_files["synthetic"], "--holdout", csv_files["holdout"],
                  "--target", "label", "--json", tmp_path / "m.json", "--report", tmp_path / "r.html",
                  "--categorical", "age", "--quiet")
    assert outcome.exit_code == 0, outcome.output
    assert "Trend error" in outcome.output and "ML eff. AUC" in outcome.output
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["ml_efficiency"]["target"] == "label"
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_cli_missing_file_exits_2_naming_it(csv_files, tmp_path):
    outcome = run(csv_files["real"], tmp_path / "nope.csv")
    assert outcome.exit_code == 2
    assert "nope.csv" in outcome.output and "Traceback" not in outcome.output


def test_cli_unreadable_file_exits_2(csv_files, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    outcome = run(csv_files["real"], empty)
    assert outcome.exit_code == 2
    assert "empty.csv" in outcome.output


def test_cli_unknown_target_exits_2_naming_it(csv_files):
    outcome = run(csv_files["real"], csv_files["synthetic"], "--holdout", csv_files["holdout"], "--target", "salary")
    assert outcome.exit_code == 2
    assert "'salary'" in outcome.output


def test_cli_refuses_a_missing_output_folder_before_scoring(csv_files, tmp_path):
    outcome = run(csv_files["real"], csv_files["synthetic"], "--report", tmp_path / "no" / "r.html")
    assert outcome.exit_code == 2
    assert "does not exist" in outcome.output
