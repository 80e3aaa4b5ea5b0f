"""Whether ``--time-budget`` keeps its word: the wall seconds of ``tabgen fit --time-budget B`` as a fresh
CLI process on every shared table, beside the budget (issues 34 and 37: "the time budget works").

    python -m benchmarks.time_budget --machine xeon-amx --budgets 30,90

For each table and budget, one after the other, as a user types it in a fresh folder: ``tabgen fit
train.csv --categorical ... --numerical ... --time-budget Bs`` (the column kinds from ``info.json``). The
budget counts from the start of the fit, reading the table included; the wall seconds also hold the
process's start and its imports, timed alone beside them. Results:
``benchmarks/results/<machine>/time-budget/<out>.{json,md}``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    commit_label,
    git_state,
    load_dataset,
    machine,
    timed,
    user_environment,
    write_results,
)

TABLES = ("adult", "default", "shoppers", "magic", "beijing", "superstore")
TABGEN = str(Path(sys.executable).with_name("tabgen"))


def fit_seconds(table: str, budget: float, seed: int, datasets_dir: Path) -> dict[str, Any]:
    ds = load_dataset(datasets_dir / table)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ds.train.to_csv(folder / "train.csv", index=False)
        command = [TABGEN, "fit", "train.csv", "-o", "m.tabgen", "--categorical", ",".join(ds.categorical),
                   "--numerical", ",".join(ds.numerical), "--time-budget", f"{budget:g}s", "--seed", str(seed), "-q"]
        done, wall = timed(lambda: subprocess.run(command, cwd=folder, env=user_environment(),
                                                          capture_output=True, text=True))
    if done.returncode != 0:
        raise RuntimeError(f"{table}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    said = re.search(r"Fitted [\d,]+ rows in ([\d.]+) s", done.stdout + done.stderr)
    if said is None:
        raise RuntimeError(f"{table}: the fit did not say its seconds: {done.stderr.strip()[-400:]}")
    return {"table": table, "rows": len(ds.train), "budget": budget, "wall_s": wall, "fit_s": float(said.group(1))}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# `tabgen fit --time-budget` against the clock ({results['machine']['cpu']}, "
             f"{commit_label(results['git'])})", "",
             f"`{results['command']}`: one fresh CLI process per table and budget, one after the other; the "
             "wall seconds include the process's start and imports (`import tabgen` alone: "
             f"{results['import_s']:.2f} s), the fit's own count starts before the table is read.", "",
             "| table | rows | budget s | fit s (as printed) | wall s | wall − budget s |", "|---|---:|---:|---:|---:|---:|"]
    for r in results["fits"]:
        lines.append(f"| {r['table']} | {r['rows']:,} | {r['budget']:g} | {r['fit_s']:.0f} | {r['wall_s']:.1f} | "
                     f"{r['wall_s'] - r['budget']:+.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--budgets", default="30,90", help="comma-separated seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="latest")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    import_s = min(timed(lambda: subprocess.run([sys.executable, "-c", "import tabgen"], env=user_environment(),
                                                         check=True))[1] for _ in range(3))
    results: dict[str, Any] = {
        "command": "python -m benchmarks.time_budget " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "git": git_state(), "import_s": import_s, "fits": [],
    }
    for table in args.tables.split(","):
        for budget in (float(b) for b in args.budgets.split(",")):
            results["fits"].append(fit_seconds(table, budget, args.seed, args.datasets_dir))
            print(results["fits"][-1], flush=True)
    write_results(args.results_dir / args.machine / "time-budget", args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
