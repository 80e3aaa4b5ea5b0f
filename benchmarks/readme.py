"""Every figure table the README shows, from one run on one machine.

    python -m benchmarks.readme --machine epyc-zen4                    # the six shared tables: hours on 2 cores
    python -m benchmarks.readme --machine epyc-zen4 --tables adult     # one table (the others' cells are kept)
    python -m benchmarks.readme --machine smoke --max-steps 100 --max-rows 2000 --no-readme   # smoke test

For each table, seed 0, one model after the other: the held-out rows (the floor), tabgen with the
defaults a user gets, TabularARGN with its defaults (its fit seconds S), and tabgen with
``time_budget=S``. Each model samples as many rows as the training table, timed; the rows are written
to CSV and read back (dates parsed, as for the real table), then scored on all rows against the
training table and against the held-out rows (Shape, Trend, tree C2ST), with the share of rows that
keep each rule found in the training table.

Each cell goes to ``<results-dir>/<machine>/readme/<table>/<cell>.json`` as soon as it is done, and a
cell whose file exists is not run again (``--force`` reruns), so a stopped run continues. Then
``readme/README.md`` there and the README's marked sections are rewritten from every cell.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .harness import (
    BENCHMARKS_DIR,
    DATASETS_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    Dataset,
    commit_label,
    cpu_defaults,
    fit_tabgen,
    floor_scores,
    git_state,
    load_dataset,
    machine,
    parsed_dates,
    read_back,
    rules_kept_table,
    sample,
    scored_against_both,
    seed_everything,
    timed,
    write_json,
)

TABLES = ("adult", "shoppers", "magic", "default", "beijing", "superstore")
#: The cells of a table, in the order they run (the duel needs TabularARGN's seconds) and are shown.
CELLS = {"floor": "held-out rows (the floor)", "tabgen": "tabgen, defaults",
         "tabgen_duel": "tabgen, budget = TabularARGN's seconds", "tabular_argn": "TabularARGN, defaults"}
RUN_ORDER = ("floor", "tabgen", "tabular_argn", "tabgen_duel")
SPEED_TABLE = "adult"


# ------------------------------------------------------------------------------------------ cells
def run_cell(cell: str, ds: Dataset, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    seed_everything(args.seed)
    if cell == "floor":
        return {"scores": floor_scores(ds, args.seed)}
    if cell == "tabular_argn":
        model, fit_s, record = _tabular_argn(ds, args)
    else:
        budget = _cell_record(folder, "tabular_argn")["fit_seconds"] if cell == "tabgen_duel" else None
        config = None if args.max_steps is None else cpu_defaults(args.max_steps)
        model, fit_s = fit_tabgen(ds, args.seed, time_budget=budget, config=config)
        record = {"time_budget": budget, "precision": model.config_.diffusion.precision,
                  "vae_steps": model.vae_result_.steps, "diffusion_steps": model.diffusion_result_.steps}
    rows, sample_s = timed(lambda: sample(model, len(ds.train), args.seed))
    back = read_back(rows, ds, BENCHMARKS_DIR / "synthetic" / "readme", cell)
    scores = scored_against_both(ds, back, seed=args.seed, schema=ds.schema(), round_tripped=True, rules=True)
    return {**record, "fit_seconds": fit_s, "sample_seconds": sample_s, "rows_per_second": len(rows) / sample_s,
            "scores": scores}


def _tabular_argn(ds: Dataset, args: argparse.Namespace) -> tuple[Any, float, dict[str, Any]]:
    from benchmarks.peers import make_tabular_argn

    model = make_tabular_argn(ds, args.seed, quick=args.max_steps is not None)
    _, fit_s = timed(lambda: model.fit(ds.train))
    return model, fit_s, {"max_epochs": model.get_params()["max_epochs"]}


def _cell_record(folder: Path, cell: str) -> dict[str, Any]:
    return json.loads((folder / f"{cell}.json").read_text())


def run_table(table: str, args: argparse.Namespace, out: Path) -> None:
    ds = parsed_dates(load_dataset(args.datasets_dir / table, max_rows=args.max_rows))
    folder = out / table
    for cell in RUN_ORDER:
        path = folder / f"{cell}.json"
        if path.exists() and not args.force:
            continue
        began = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = run_cell(cell, ds, args, folder)
        write_json(path, {"table": table, "cell": cell, "seed": args.seed, "began": began, "git": git_state(),
                          "machine": machine(), "command": args.command, "rows": len(ds.train), **record})
        print(f"{table} {cell}: {_line(record)}", flush=True)


def _line(record: dict[str, Any]) -> str:
    s = record["scores"]
    fit = f" in {record['fit_seconds']:.0f} s" if "fit_seconds" in record else ""
    return f"Trend {s['trend']:.2f} %, C2ST {s['c2st_tree']:.3f}" + fit


# --------------------------------------------------------------------------------------- rendering
def load_cells(out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    tables = {}
    for table in TABLES:
        cells = {c: _cell_record(out / table, c) for c in CELLS if (out / table / f"{c}.json").exists()}
        if cells:
            tables[table] = cells
    return tables


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _pair(scores: dict[str, Any], suffix: str = "") -> str:
    trend, c2st = scores.get("trend" + suffix), scores.get(("c2st_tree" if not suffix else "c2st") + suffix)
    return "" if trend is None else f"{trend:.2f} · {c2st:.3f}"


def standing_tables(tables: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The README's summary: Trend error and tree C2ST per table and model, against each reference."""
    lines = []
    for title, suffix in (("against the training table", ""), ("against the held-out rows", "_holdout")):
        shown = [c for c in CELLS if c != "floor" or not suffix]
        lines += [f"Trend % · tree C2ST {title}:", "", "| dataset | " + " | ".join(CELLS[c] for c in shown) + " |",
                  "|---|" + "---|" * len(shown)]
        for table, cells in tables.items():
            row = []
            for c in shown:
                cell = cells.get(c)
                text = _pair(cell["scores"], suffix) if cell else ""
                if cell and "fit_seconds" in cell and not suffix:
                    text += f" ({cell['fit_seconds']:.0f} s)"
                row.append(text)
            lines.append(f"| {table} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def speed_table(tables: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The README's speed table: adult's fit seconds, sampling rate and scores against the training table."""
    cells = tables.get(SPEED_TABLE, {})
    lines = ["| | fit s | rows/s sampled | Shape % | Trend % | tree C2ST |", "|---|---:|---:|---:|---:|---:|"]
    for c in ("floor", "tabular_argn", "tabgen_duel", "tabgen"):
        if c in cells:
            r, s = cells[c], cells[c]["scores"]
            lines.append(f"| {CELLS[c]} | {_num(r.get('fit_seconds'), 0)} | {_num(r.get('rows_per_second'), 0)} | "
                         f"{s['shape']:.2f} | {s['trend']:.2f} | {s['c2st_tree']:.3f} |")
    return "\n".join(lines) + "\n"


def provenance(tables: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Which command and code gave which cells, earliest first: a rerun without ``--force`` keeps the cells it finds."""
    runs: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for cells in tables.values():
        for cell, r in cells.items():
            run = (r["command"], commit_label(r["git"]))
            began, kinds = runs.get(run, (r["began"], set()))
            runs[run] = (min(began, r["began"]), kinds | {cell})
    ordered = sorted(runs.items(), key=lambda run: run[1][0])
    if len(ordered) == 1:
        return f"`{ordered[0][0][0]}`, code of commit {ordered[0][0][1]}"
    return "; ".join(f"`{command}`, code of commit {commit}: {' / '.join(CELLS[c] for c in RUN_ORDER if c in kinds)}"
                     for (command, commit), (_, kinds) in ordered)


def results_page(tables: dict[str, dict[str, dict[str, Any]]], label: str) -> str:
    records = [r for cells in tables.values() for r in cells.values()]
    began = sorted(r["began"] for r in records)
    lines = [f"# The README's figures on `{label}` ({records[0]['machine']['cpu']}, "
             f"{records[0]['machine']['usable_cores']} cores)", "",
             f"{provenance(tables)}, cells run {began[0]} … {began[-1]}. "
             "Seed 0; each model samples as many rows as the training table, written to CSV and read back; "
             "all rows scored against the training table and against the held-out rows. Shape and Trend are "
             "errors in %, the tree C2ST is 1 where a gradient-boosted classifier cannot tell the rows apart.", "",
             standing_tables(tables)]
    for table, cells in tables.items():
        lines += [f"## {table} ({cells[next(iter(cells))]['rows']:,} training rows)", "",
                  "| | fit s | rows/s sampled | Shape % | Trend % | tree C2ST | vs held-out: Shape % | Trend % | tree C2ST |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c, r in cells.items():
            s = r["scores"]
            lines.append(f"| {CELLS[c]} | {_num(r.get('fit_seconds'), 0)} | {_num(r.get('rows_per_second'), 0)} | "
                         f"{s['shape']:.2f} | {s['trend']:.2f} | {s['c2st_tree']:.3f} | {_num(s.get('shape_holdout'), 2)} | "
                         f"{_num(s.get('trend_holdout'), 2)} | {_num(s.get('c2st_holdout'), 3)} |")
        lines += ["", rules_table(cells), ""]
    return "\n".join(lines)


def rules_table(cells: dict[str, dict[str, Any]]) -> str:
    """Each rule found in the training table, and the share of each model's rows keeping it."""
    models = [c for c in CELLS if c != "floor" and c in cells]
    if not models or not cells[models[0]]["scores"]["rules_kept"]:
        return "No rule found in the training table."
    return "\n".join(rules_kept_table({CELLS[m]: cells[m]["scores"]["rules_kept"] for m in models}))


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with what stands between ``<!-- readme:NAME -->`` and ``<!-- /readme:NAME -->`` replaced."""
    pattern = re.compile(rf"(<!-- readme:{name} -->\n).*?(<!-- /readme:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- readme:{name} --> section")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rerun cells whose results exist")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    parser.add_argument("--max-steps", type=int, default=None, help="cap tabgen's steps (smoke tests only)")
    parser.add_argument("--max-rows", type=int, default=None, help="cap each table's rows (smoke tests only)")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.command = "python -m benchmarks.readme " + " ".join(sys.argv[1:] if argv is None else argv)
    out = args.results_dir / args.machine / "readme"
    for table in args.tables.split(","):
        run_table(table, args, out)
    tables = load_cells(out)
    (out / "README.md").write_text(results_page(tables, args.machine))
    if not args.no_readme:
        readme = REPO_ROOT / "README.md"
        text = replace_section(readme.read_text(), "standing", standing_tables(tables))
        readme.write_text(replace_section(text, "speed", speed_table(tables)))


if __name__ == "__main__":
    main()
