"""Every forward process through the command line on every shared table (issue 36's "fits, samples and
conditions from the CLI"): not a quality study, a check that each path works on real tables.

    python -m benchmarks.process_cli --machine epyc-zen4 --budget 10

For each table and process, one after the other, as a user types it in a fresh folder: ``tabgen fit
train.csv --categorical ... --process P --time-budget B`` (the column kinds from ``info.json``; the graph
process with ``--solver dpm2m``), ``tabgen sample`` (``--rows`` rows), ``tabgen sample --given COL=VALUE``
(COL the table's first categorical column of at most 50 values, VALUE its most frequent one), and
``tabgen impute`` on training rows with COL emptied. Each
step must exit 0; the check counts the rows written, the given rows that keep VALUE and the emptied
cells left empty. Results: ``benchmarks/results/<machine>/process_cli/<out>.{json,md}``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    Dataset,
    commit_label,
    git_state,
    load_dataset,
    machine,
    timed,
    write_results,
)

TABLES = ("adult", "shoppers", "magic", "default", "beijing", "superstore")
PROCESSES = ("edm", "vp", "ve", "ddpm", "graph")


def tabgen(*args: str, cwd: Path) -> float:
    """Runs ``tabgen ARGS`` in ``cwd`` and returns its seconds; a failing step raises with its stderr."""
    command = [str(Path(sys.executable).with_name("tabgen")), *args, "--quiet"]
    done, seconds = timed(lambda: subprocess.run(command, cwd=cwd, capture_output=True, text=True))
    if done.returncode != 0:
        raise RuntimeError(f"tabgen {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    return seconds


def check(ds: Dataset, process: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    column = next(c for c in ds.categorical if ds.train[c].nunique() <= 50)
    value = str(ds.train[column].astype(str).mode()[0])
    ds.train.to_csv(folder / "train.csv", index=False)
    # Training rows: held-out ones may hold categories the model never saw (superstore's order IDs),
    # which impute refuses, naming them.
    blanks = ds.train.head(args.rows).copy()
    blanks[column] = None
    blanks.to_csv(folder / "blanks.csv", index=False)
    solver = ["--solver", "dpm2m"] if process == "graph" else []
    row: dict[str, Any] = {"table": ds.name, "process": process, "given": f"{column}={value}"}
    try:
        row["fit_s"] = tabgen("fit", "train.csv", "-o", "m.tabgen", "--categorical", ",".join(ds.categorical),
                              "--numerical", ",".join(ds.numerical), "--process", process, *solver,
                              "--time-budget", f"{args.budget:g}s", "--seed", str(args.seed), cwd=folder)
        row["sample_s"] = tabgen("sample", "-m", "m.tabgen", "-n", str(args.rows), "-o", "rows.csv", cwd=folder)
        row["rows"] = len(pd.read_csv(folder / "rows.csv"))
        row["given_s"] = tabgen("sample", "-m", "m.tabgen", "-n", str(args.rows), "--given", f"{column}={value}",
                                "-o", "given.csv", cwd=folder)
        given = pd.read_csv(folder / "given.csv", dtype=str)
        row["given_kept"] = float((given[column] == value).mean())
        row["impute_s"] = tabgen("impute", "blanks.csv", "-m", "m.tabgen", "-o", "imputed.csv", cwd=folder)
        row["imputed_empty"] = int(pd.read_csv(folder / "imputed.csv")[column].isna().sum())
        row["ok"] = row["rows"] == args.rows and row["given_kept"] == 1.0 and row["imputed_empty"] == 0
    except RuntimeError as error:
        row["ok"], row["error"] = False, str(error)
    return row


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Every process from the CLI on every shared table ({results['machine']['cpu']}, "
        f"{commit_label(results['git'])})",
        "",
        f"`{results['command']}`: fit with `--time-budget {results['budget']:g}s` (a check that each path "
        f"works, not a quality study), sample {results['rows']} rows, sample {results['rows']} with "
        "`--given`, impute the emptied column of as many training rows.",
        "",
        "| table | process | given | fit s | sample s | given s | impute s | rows | given kept | left empty | ok |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["checks"]:
        if "error" in r:
            lines.append(f"| {r['table']} | {r['process']} | `{r['given']}` | {r['error']} |||||||| no |")
            continue
        lines.append(
            f"| {r['table']} | {r['process']} | `{r['given']}` | {r['fit_s']:.0f} | {r['sample_s']:.1f} | "
            f"{r['given_s']:.1f} | {r['impute_s']:.1f} | {r['rows']} | {100 * r['given_kept']:.0f} % | "
            f"{r['imputed_empty']} | {'yes' if r['ok'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--processes", default=",".join(PROCESSES))
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of fitting per table and process")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="latest")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": "python -m benchmarks.process_cli " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "git": git_state(), "budget": args.budget, "rows": args.rows, "checks": [],
    }
    for table in args.tables.split(","):
        ds = load_dataset(args.datasets_dir / table)
        for process in args.processes.split(","):
            folder = Path(tempfile.mkdtemp(prefix=f"tabgen-{table}-{process}-"))
            try:
                row = check(ds, process, args, folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(row, flush=True)
            results["checks"].append(row)
            write_results(args.results_dir / args.machine / "process_cli", args.out, results, markdown(results))
    return 0 if all(r["ok"] for r in results["checks"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
