"""What finding the rules costs and what it finds: the seconds of the one-to-one pairs (``find_pairs``) and
of the rules (``rules_for_table``) on every shared table, with value protection as a fit has it by default
and without, and the rules found (docs/rules.md, "What it finds on the shared tables").

    python -m benchmarks.rule_search --machine xeon-amx

The schema comes from the table and its ``info.json`` kinds, as a fit builds it; each time is the best of
``--repeats``. Results: ``benchmarks/results/<machine>/rules/rule-search.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tabgen.config import RARE_VALUE_ROWS
from tabgen.pairs import find_pairs
from tabgen.protection import protected
from tabgen.rules.selection import rules_for_table
from tabgen.schema import infer_schema

from .harness import DATASETS_DIR, RESULTS_DIR, commit_label, git_state, load_dataset, machine, timed, write_results

TABLES = ("adult", "default", "shoppers", "magic", "beijing", "superstore")


def search(table: str, rare_rows: int, repeats: int, datasets_dir: Path) -> dict[str, Any]:
    ds = load_dataset(datasets_dir / table)
    schema = infer_schema(ds.train, ds.categorical, ds.numerical)
    df, schema, _ = protected(ds.train, schema, rare_rows)
    pairs = [timed(lambda: find_pairs(df, schema)) for _ in range(repeats)]
    schema = pairs[0][0]
    found = [timed(lambda: rules_for_table(df, schema, rare_rows=rare_rows)) for _ in range(repeats)]
    return {"table": table, "rows": len(df), "columns": df.shape[1], "rare_rows": rare_rows,
            "pairs_s": min(s for _, s in pairs), "rules_s": min(s for _, s in found),
            "pairs": [f"{s.derived_from} -> {s.name}" for s in schema.columns if s.derived_from is not None],
            "rules": [f"{rule.kind}: {rule.name}" for rule in found[0][0]]}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Finding the rules of the shared tables ({results['machine']['cpu']}, {commit_label(results['git'])})", "",
             f"`{results['command']}`: best of {results['repeats']} runs each, one process; protection is the "
             f"fit's default (values of fewer than {RARE_VALUE_ROWS} rows grouped) or off (`rare_value_rows=0`).", "",
             "| table | rows × columns | protection | pairs s | rules s | one-to-one pairs | rules |",
             "|---|---|---|---:|---:|---|---|"]
    for r in results["searches"]:
        lines.append(f"| {r['table']} | {r['rows']:,} × {r['columns']} | {'on' if r['rare_rows'] else 'off'} | "
                     f"{r['pairs_s']:.2f} | {r['rules_s']:.2f} | {len(r['pairs'])} | {len(r['rules'])}: "
                     f"{'; '.join(f'`{n}`' for n in r['rules']) or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="rule-search")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": "python -m benchmarks.rule_search " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "git": git_state(), "repeats": args.repeats, "searches": [],
    }
    for table in args.tables.split(","):
        for rare_rows in (RARE_VALUE_ROWS, 0):
            results["searches"].append(search(table, rare_rows, args.repeats, args.datasets_dir))
            print({k: v for k, v in results["searches"][-1].items() if k != "rules"}, flush=True)
    write_results(args.results_dir / args.machine / "rules", args.out, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
