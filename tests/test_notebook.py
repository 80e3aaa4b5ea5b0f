"""The quickstart notebook's code runs as written (with a shorter training budget)."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "time_budget=120" in code
    namespace: dict = {}
    exec(compile(code.replace("time_budget=120", "time_budget=4, progress=False"), str(NOTEBOOK), "exec"), namespace)
    assert len(namespace["fake"]) == len(namespace["real"])
    assert (tmp_path / "penguins.tabgen").exists()
