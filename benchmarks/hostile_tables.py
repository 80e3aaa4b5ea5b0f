"""Bounded memory and time on hostile input, as ``docs/robustness.md`` states them: a 200,000-row table
with a 100,000-category column fitted with ``--time-budget 60s``, and a model file whose header asks
for a width-20,000 denoiser (its checksum valid) given to ``tabgen sample``. Each runs as a real CLI
process; its wall time and peak resident memory are recorded.

    python -m benchmarks.hostile_tables --results-dir benchmarks/results/epyc   # writes robustness.json there
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .harness import RESULTS_DIR, git_state, machine, write_json

# The child reports its own peak RSS: RUSAGE_CHILDREN would mix in every earlier child.
_CHILD = """
import resource, sys
from tabgen.cli import main
try:
    main(sys.argv[1:])
finally:
    print(f"peak-rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}", file=sys.stderr)
"""


def run_cli(args: list[str], cwd: Path) -> dict[str, object]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=cwd, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    peak = int(lines[-1].split()[1]) if lines and lines[-1].startswith("peak-rss") else None
    return {"command": "tabgen " + " ".join(args), "exit_code": done.returncode, "seconds": round(time.monotonic() - began, 1),
            "peak_rss_mib": None if peak is None else round(peak / 2**20), "messages": lines[:-1][-4:]}


def many_categories(folder: Path, budget: str) -> dict[str, object]:
    rng = np.random.default_rng(0)
    n = 200_000
    pd.DataFrame({
        "code": [f"k{i}" for i in rng.permutation(np.resize(np.arange(100_000), n))],
        "amount": rng.lognormal(3, 1, n).round(2),
        "kind": rng.choice(["a", "b", "c"], n),
    }).to_csv(folder / "big.csv", index=False)
    fit = run_cli(["fit", "big.csv", "--time-budget", budget, "-q"], folder)
    sample = run_cli(["sample", "-n", "20000", "-o", "rows.csv", "-q"], folder)
    return {"fit": fit, "sample": sample}


def huge_header(folder: Path) -> dict[str, object]:
    from tabgen import Synthesizer, SynthesizerConfig
    from tabgen.io import load_model, save_model

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "g": rng.choice(["a", "b"], 300)})
    config = SynthesizerConfig()
    config.vae.max_steps, config.diffusion.max_steps, config.sampler.calibration_rows = 20, 20, 0
    Synthesizer(config=config, progress=False).fit(df).save(folder / "model.tabgen")
    header, tensors = load_model(folder / "model.tabgen")
    header["config"]["diffusion"]["width"] = 20_000
    save_model(folder / "wide.tabgen", header, tensors)  # a valid checksum, as anyone can compute
    return run_cli(["sample", "-m", "wide.tabgen", "-n", "5", "-o", "out.csv"], folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="60s")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        payload = {"machine": machine(), "git": git_state(), "many_categories": many_categories(folder, args.budget),
                   "huge_header": huge_header(folder)}
    out = args.results_dir / "robustness.json"
    write_json(out, payload)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
