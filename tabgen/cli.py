"""The ``tabgen`` command: a thin shell over the Python API.

User mistakes (:class:`TabgenError`) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
import warnings
from pathlib import Path

import click

from .config import PROCESSES, RARE_VALUE_ROWS, SOLVERS, SynthesizerConfig
from .device import resolve_device
from .distributed import SINGLE, launched, ranks_from_env, restarted
from .errors import TabgenError, TabgenWarning
from .glibc_heap import keep_large_blocks
from .io import MODEL_SUFFIX, atomic_write, find_model, looks_like_model, read_table, write_table
from .synthesizer import FitInterrupted, Synthesizer

#: The library's errors name its parameters; a command-line user knows them as these flags.
_FLAGS = {"a larger time budget": "a larger --time-budget", "resume=True": "--resume", "device='cpu'": "--device cpu",
          "sep=": "--sep", "encoding='cp1252'": "--encoding cp1252", "rules=[...]": '--rule "..."'}


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        keep_large_blocks()  # this process's own allocator: its tensors stay on the heap between batches
        try:
            with _stop_signals_as_interrupts(), warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except TabgenError as e:
            click.echo(f"error: {_in_flags(str(e))}", err=True)
            ctx.exit(2)
        except MemoryError:
            click.echo(f"error: this machine ran out of memory in tabgen {ctx.invoked_subcommand}; its limits on table "
                       "size are in docs/robustness.md: use fewer rows or columns, or free memory", err=True)
            ctx.exit(2)
        except TabgenInterrupt as e:
            click.echo(str(e), err=True)
            ctx.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was written", err=True)
            ctx.exit(130)


_default_showwarning = warnings.showwarning


def _in_flags(message: str) -> str:
    for words, flag in _FLAGS.items():
        message = message.replace(words, flag)
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A user-facing warning is one plain line; Python's default adds a file path and a source line.
    if issubclass(category, TabgenWarning):
        if ranks_from_env().main:  # under torchrun, once rather than once per process
            click.echo(f"warning: {_in_flags(str(message))}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


class TabgenInterrupt(Exception):
    """Ctrl-C, after what could be kept was kept; the message says what and how to go on."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals_as_interrupts():
    """SIGTERM (kill, a job scheduler's time limit) and SIGHUP (a closed terminal) act as Ctrl-C.

    By default they end the process without running any cleanup, which would leave a half-written
    temporary file; as a KeyboardInterrupt they unwind through ``atomic_write``, which removes it and
    keeps the previous file. A signal someone chose to ignore (``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (e.g. under a test runner's thread)
        return
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)  # Windows has no SIGHUP
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def refuse_overwriting_inputs(outputs: dict[str, object], inputs: dict[str, object]) -> None:
    """Before any work: no file to write may be a file read (the same file by any path, a symlink or a
    hard link included), which would be replaced and lost."""
    for out_label, out in outputs.items():
        if out is None or str(out) == "-" or not Path(out).exists():
            continue
        for in_label, source in inputs.items():
            if source is not None and Path(source).exists() and os.path.samefile(out, source):
                raise TabgenError(f"{out_label} {out} is {in_label} {source}: writing it would replace what is read; "
                                  "choose another output path")


def parse_duration(text: str | None) -> float | None:
    """``600``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise TabgenError(f"time budget {text!r} is not a positive duration such as 600, 90s, 10m or 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_separator(text: str | None) -> str | None:
    """``;``, ``|``, ``tab`` (or ``\\t``) -> the one character that separates fields."""
    if text is None:
        return None
    sep = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(sep) != 1 or sep in "\"\r\n":
        raise TabgenError(f"--sep {text!r} is not one separator character such as , ; | or tab")
    return sep


def parse_given_option(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``--given COL=VALUE`` (repeated) -> {COL: VALUE}; split on the first ``=``, so values may hold one."""
    given: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TabgenError(f"--given expects COLUMN=VALUE, got {item!r}")
        if name in given:
            raise TabgenError(f"--given names column {name!r} twice")
        given[name] = value
    return given


def parse_rebalance_option(text: str) -> dict[str, dict[str, float]]:
    """``COL=CAT:SHARE,CAT2:SHARE2`` -> {COL: {CAT: SHARE, ...}}.

    Each item splits on its last ``:``, so a category may contain ``:`` or ``=`` (but not ``,``).
    """
    name, sep, items = text.partition("=")
    if not sep or not name or not items:
        raise TabgenError(f"--rebalance expects COLUMN=CATEGORY:SHARE[,CATEGORY:SHARE...], got {text!r}")
    shares: dict[str, float] = {}
    for item in items.split(","):
        category, sep, share = item.rpartition(":")
        if not sep or not category:
            raise TabgenError(f"--rebalance item {item!r} is not CATEGORY:SHARE")
        try:
            shares[category] = float(share)
        except ValueError:
            raise TabgenError(f"--rebalance: the share of {category!r} is not a number: {share!r}") from None
    return {name: shares}


def demo_config(device: str) -> SynthesizerConfig:
    """Fewer steps than the defaults, so the demo takes a couple of minutes on a laptop; a step
    count rather than a time budget, so it gives the same result on a slow or busy machine."""
    config = SynthesizerConfig.for_device(str(resolve_device(device)))
    config.vae.max_steps = 800
    config.diffusion.max_steps = 4000
    return config


def _names(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


device_option = click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:N.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed, for reproducible runs.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
sep_option = click.option("--sep", metavar="CHAR",
                          help="Field separator of the input: , ; | or tab [default: sniffed from the first lines].")
encoding_option = click.option("--encoding", metavar="NAME",
                               help="Text encoding of the input, e.g. cp1252 [default: UTF-8, or UTF-16 with a BOM].")
model_option = click.option("-m", "--model", type=click.Path(dir_okay=False, path_type=Path),
                            help=f"Model file [default: the newest {MODEL_SUFFIX} file in the current folder].")
sample_seed_option = click.option("--seed", type=int, default=None,
                                  help="Random seed [default: the one the model was fitted with].")


@click.group(cls=_Group)
@click.version_option(package_name="tabgen")
def main() -> None:
    """Learn a table and generate synthetic rows (TabSyn: VAE + latent diffusion)."""


def _fit_config(device: str, process: str, solver: str | None, no_value_protection: bool,
                whiten_correlated: float | None) -> SynthesizerConfig | None:
    """The device's defaults with the fit's options, or None where none changes them."""
    if process == "edm" and solver is None and not no_value_protection and whiten_correlated is None:
        return None
    config = SynthesizerConfig.for_device(str(resolve_device(device)))
    config.diffusion.process = process
    config.diffusion.whiten_correlation = whiten_correlated
    config.sampler.solver = solver or config.sampler.solver
    config.rare_value_rows = 0 if no_value_protection else config.rare_value_rows
    return config


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Model file to write [default: DATA's name with {MODEL_SUFFIX}, in the current folder].")
@click.option("--categorical", help="Comma-separated columns to treat as categorical.")
@click.option("--numerical", help="Comma-separated columns to treat as numerical.")
@click.option("--id", "identifiers", help="Comma-separated identifier columns: not learned, generated fresh.")
@click.option("--no-exact-pairs", is_flag=True,
              help="Learn every column on its own. By default, of columns that determine each other one-to-one "
                   "(a code and its label), one is learned and the others are written from it, exactly.")
@click.option("--rule", "rules", multiple=True,
              help="A rule every generated row keeps, checked against the table (repeatable): 'total = fare + tip', "
                   "'end >= start', 'zone -> borough', or a formula 'depth = 2*z/(x+y)*100 +- 0.05'; ending in "
                   "'(with exceptions)', one that at most 5 % of rows break is kept at its share (docs/rules.md).")
@click.option("--no-rules", is_flag=True, help="Find no rules in the table (declared --rule ones are still kept).")
@click.option("--drop-rule", "drop_rules", multiple=True,
              help="Leave out a found rule, by its name as fit shows it (repeatable).")
@click.option("--no-value-protection", is_flag=True,
              help=f"Learn every value as it is. By default a value of fewer than {RARE_VALUE_ROWS} rows (a category, a value "
                   "of a discrete number, a column's extremes) is grouped with others and never generated (docs/privacy.md).")
@click.option("--dp-epsilon", type=float,
              help="Train with (ε, δ)-differential privacy at this ε (DP-SGD through Opacus): 1 is strong, 10 weak. "
                   "Finds no rules nor pairs in the table; what ε covers is in docs/privacy.md.")
@click.option("--time-budget", help="Train for this long at most: 600, 90s, 10m, 1h; the denoiser then trains until the "
                                    "budget ends or it stops improving [default: a fixed number of steps, about 10 minutes "
                                    "on a 2-core CPU].")
@click.option("--process", type=click.Choice(PROCESSES), default="edm", show_default=True,
              help="The diffusion's forward process: EDM's, variance-preserving, variance-exploding, DDPM's, "
                   "or one coupled over the columns' graph (docs/processes.md).")
@click.option("--solver", type=click.Choice(SOLVERS), default=None,
              help="How the model's rows are sampled: Heun's steps, DPM-Solver++(2M) (twice as fast for edm, a "
                   "little lower C2ST) or DDPM's ancestral steps [default: auto: dpm2m for ve and graph, else heun].")
@click.option("--whiten-correlated", type=click.FloatRange(0, 1, max_open=True), metavar="R",
              help="Whiten together the latents of numerical columns that correlate at R or more, e.g. 0.85: it "
                   "helped columns that move together (monthly bills) and hurt others (docs/rules.md) [default: off].")
@sep_option
@encoding_option
@click.option("--resume", is_flag=True, help="Continue an interrupted fit from its checkpoint (MODEL.ckpt).")
@click.option("--distributed", is_flag=True,
              help="Train on every process torchrun starts: torchrun --nproc_per_node=N $(which tabgen) fit DATA "
                   "--distributed (docs/scale.md).")
@device_option
@seed_option
@quiet_option
def fit(data: Path, output: Path | None, categorical: str | None, numerical: str | None, identifiers: str | None,
        no_exact_pairs: bool, rules: tuple[str, ...], no_rules: bool, drop_rules: tuple[str, ...],
        no_value_protection: bool, dp_epsilon: float | None, time_budget: str | None,
        process: str, solver: str | None, whiten_correlated: float | None, sep: str | None, encoding: str | None,
        resume: bool, distributed: bool,
        device: str, seed: int, quiet: bool) -> None:
    """Learn DATA (CSV, TSV, Parquet, or a folder of Parquet partitions) and write a model file.

    A table of more than a million rows is streamed from disk, never held whole (docs/scale.md).
    The training state is saved to MODEL.ckpt every minute and on Ctrl-C; `--resume` continues from it.
    """
    output = output or Path(data.stem + MODEL_SUFFIX)
    checkpoint = output.with_name(output.name + ".ckpt")
    refuse_overwriting_inputs({"the model file": output, "the checkpoint": checkpoint}, {"the table": data})
    replacing = output.exists()
    if replacing and (output.is_dir() or not looks_like_model(output)):
        raise TabgenError(f"{output} exists and is not a tabgen model: the fit would replace it; choose another -o path")
    if distributed and not launched():
        raise TabgenError("--distributed needs the processes torchrun starts: torchrun --nproc_per_node=N "
                          "$(which tabgen) fit DATA --distributed")
    # torchrun restarts every rank when one dies (--max-restarts): the restarted fit goes on from the checkpoint.
    resume = resume or (distributed and restarted() and checkpoint.exists())
    budget = parse_duration(time_budget)  # the command's: fit counts reading the table in it
    config = _fit_config(device, process, solver, no_value_protection, whiten_correlated)
    syn = Synthesizer(categorical=_names(categorical), numerical=_names(numerical), identifiers=_names(identifiers),
                      exact_pairs=not no_exact_pairs, rules=rules, find_rules=not no_rules, drop_rules=drop_rules,
                      time_budget=budget, config=config, device=device, seed=seed,
                      progress=not quiet, checkpoint=checkpoint, distributed=distributed, dp_epsilon=dp_epsilon)
    try:
        syn.fit_and_save(data, output, resume=resume, sep=parse_separator(sep), encoding=encoding)
    except FitInterrupted as e:
        again = (f"continue with: tabgen fit {data} -o {output} --resume" if checkpoint.exists()
                 else "nothing was trained yet to resume from")
        if e.saved:
            raise TabgenInterrupt(f"interrupted: wrote the best model so far to {output}; {again}") from None
        if e.kept:
            raise TabgenInterrupt(f"interrupted: {output} is kept as it was; {again}") from None
        raise TabgenInterrupt(f"interrupted during the VAE phase, before any model existed; {again}") from None
    ranks = ranks_from_env() if distributed else SINGLE
    if not ranks.main:
        return
    if not quiet:
        click.echo(f"Columns of {data}:\n{syn.schema_}", err=True)
        if syn.protection_.columns:
            click.echo(f"Values of fewer than {syn.protection_.min_rows} rows, never learned nor generated "
                       f"(--no-value-protection keeps them):\n{syn.protection_}", err=True)
        click.echo(f"Rules kept in generated rows ({len(syn.rules_)}; one with a share, at that share; "
                   f"--drop-rule NAME leaves one out):\n{syn.rules_}", err=True)
    rows = f"{syn.n_rows_:,} row{'s' if syn.n_rows_ != 1 else ''}"
    if syn.skipped_share_:
        rows += f" ({100 * syn.skipped_share_:.2g} % of the rows streamed were left out: they hold values its sample has not)"
    where = f"{ranks.size} processes on {syn.device_.type}" if ranks.size > 1 else str(syn.device_)
    replaced = " (it replaces the model that was there)" if replacing else ""
    click.echo(f"Fitted {rows} in {syn.fit_seconds_:.0f} s on {where}; wrote {output}{replaced}", err=True)
    if syn.privacy_ is not None:
        click.echo(f"Privacy: {syn.privacy_}; what it does not cover is in docs/privacy.md", err=True)


@main.command()
@click.option("-n", "--rows", "n", type=int,
              help="Rows to generate [default: one per row of --given-file, else as many as the training table had].")
@model_option
@click.option("-o", "--output", default="synthetic.csv", show_default=True,
              help="File to write: CSV, or Parquet if it ends in .parquet or .pq; - writes CSV to standard output. "
                   "A folder (ending in / or existing, and empty) gets Parquet part files of up to a million rows, "
                   "written with flat memory however large -n is; under torchrun each process writes its own parts.")
@click.option("--given", "given_items", multiple=True, metavar="COL=VALUE",
              help="Fix a column's value in every row (repeatable), e.g. --given workclass=Private --given age=30.")
@click.option("--given-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A table of partial rows (CSV or Parquet): one synthetic row per row, keeping its non-empty cells.")
@click.option("--rebalance", metavar="COL=CAT:SHARE,...",
              help="Target shares of a categorical column's values, e.g. \"income=>50K:0.5\"; "
                   "the other values share the rest in the model's proportions.")
@device_option
@sample_seed_option
@quiet_option
def sample(n: int | None, model: Path | None, output: str, given_items: tuple[str, ...], given_file: Path | None,
           rebalance: str | None, device: str, seed: int | None, quiet: bool) -> None:
    """Generate synthetic rows from a fitted model, optionally with some cells fixed or rebalanced."""
    from . import distributed
    from .io.parts import is_parts_path, part_files, rows_in

    if n is not None and n <= 0:
        raise TabgenError(f"-n must be a positive number of rows, got {n}")
    if given_items and given_file:
        raise TabgenError("use --given or --given-file, not both")
    model = model or find_model(".")
    refuse_overwriting_inputs({"the output": output}, {"the model": model, "the given file": given_file})
    given = read_table(given_file) if given_file else parse_given_option(given_items) or None
    shares = parse_rebalance_option(rebalance) if rebalance is not None else None
    parts = is_parts_path(output)
    if distributed.launched() and not parts:
        raise TabgenError(f"-o {output} is a file, but under torchrun each process writes its own part files: "
                          "give a folder, such as -o out/")
    ranks = distributed.join(resolve_device(device))
    if ranks.size > 1:
        resolved = distributed.device_for(resolve_device(device), ranks)  # one GPU per process
        if resolved.type == "cuda":
            import torch

            torch.cuda.set_device(resolved)  # NCCL's barrier runs on the current device
        device = str(resolved)
    syn = Synthesizer.load(model, device=device, progress=not quiet)
    start = time.monotonic()
    try:
        n = syn.sample_to(output, n, given=given, rebalance=shares, seed=seed)
    except KeyboardInterrupt:
        if not parts or not part_files(output):
            raise
        done = part_files(output)
        kept = f"{len(done)} complete part file{'s are' if len(done) != 1 else ' is'}"
        raise TabgenInterrupt(f"interrupted: {kept} in {output} ({rows_in(done):,} rows); "
                              "remove them, or give a new folder, to sample again") from None
    if output == "-" or not ranks.main:
        return
    seconds = time.monotonic() - start
    if parts:
        done = part_files(output)
        by = f" by {ranks.size} processes" if ranks.size > 1 else ""
        click.echo(f"Wrote {rows_in(done):,} rows in {len(done)} part file{'s' if len(done) != 1 else ''} to {output}{by} "
                   f"in {seconds:.1f} s (model {model})", err=True)
    else:
        click.echo(f"Wrote {n:,} rows to {output} in {seconds:.1f} s (model {model})", err=True)


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@click.option("-o", "--output", default="imputed.csv", show_default=True,
              help="File to write: CSV, or Parquet if it ends in .parquet or .pq; - writes CSV to standard output.")
@click.option("--draws", type=int, default=1, show_default=True,
              help="Completions per row: a filled number is their mean, a filled category the most frequent.")
@sep_option
@encoding_option
@device_option
@sample_seed_option
@quiet_option
def impute(data: Path, model: Path | None, output: str, draws: int, sep: str | None, encoding: str | None,
           device: str, seed: int | None, quiet: bool) -> None:
    """Fill the empty cells of DATA (with the model's columns) from the model; every other cell is kept."""
    if draws <= 0:
        raise TabgenError(f"--draws must be a positive number, got {draws}")
    model = model or find_model(".")
    refuse_overwriting_inputs({"the output": output}, {"the table": data, "the model": model})
    df = read_table(data, sep=parse_separator(sep), encoding=encoding)
    syn = Synthesizer.load(model, device=device, progress=not quiet)
    start = time.monotonic()
    filled = syn.impute(df, draws=draws, seed=seed)
    write_table(filled, output)
    holes = int(df.isna().to_numpy().sum())
    click.echo(f"Filled {holes:,} empty cells of {data} and wrote {output} in {time.monotonic() - start:.1f} s "
               f"(model {model})", err=True)


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("tabgen-demo"), show_default=True,
              help="Folder for the demo's files.")
@click.option("--time-budget", default=None, help="Train for at most this long [default: a fixed number of steps].")
@device_option
@seed_option
@quiet_option
def demo(out_dir: Path, time_budget: str | None, device: str, seed: int, quiet: bool) -> None:
    """Fit the Palmer penguins table, sample as many rows, and evaluate them against the real ones."""
    from palmerpenguins import load_penguins

    from .compare import compare_text
    from .evaluation import evaluate as evaluate_tables

    out_dir.mkdir(parents=True, exist_ok=True)
    real = load_penguins()
    write_table(real, out_dir / "penguins.csv")
    syn = Synthesizer(config=demo_config(device), time_budget=parse_duration(time_budget), device=device, seed=seed,
                      progress=not quiet).fit(real)
    syn.save(out_dir / "penguins.tabgen")
    fake = syn.sample(len(real))
    write_table(fake, out_dir / "synthetic.csv")
    click.echo(f"Fitted {len(real)} penguins in {syn.fit_seconds_:.0f} s; files in {out_dir}/\n")
    click.echo(compare_text(real, fake, syn.schema_))
    click.echo("\n" + evaluate_tables(real, fake, schema=syn.schema_, seed=seed, progress=not quiet).to_table())


@main.command()
@click.argument("real", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("synthetic", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--holdout", type=click.Path(dir_okay=False, path_type=Path),
              help="Real rows not used for training (CSV or Parquet).")
@click.option("--target", help="Column to predict for ML efficiency.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the scores as JSON here.")
@click.option("--categorical", help="Comma-separated columns to treat as categorical.")
@click.option("--numerical", help="Comma-separated columns to treat as numerical.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for every sample, fold and model.")
@click.option("--max-rows", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="Rows drawn at most from each table by the nearest-neighbour metrics "
                   "(Shape, Trend and C2ST read up to 100,000).")
@click.option("--floor/--no-floor", default=None,
              help="Also score the holdout itself: the values real data reaches [default: with --holdout].")
@click.option("--sep", metavar="CHAR",
              help="Field separator of REAL and HOLDOUT: , ; | or tab [default: sniffed from the first lines].")
@click.option("--encoding", metavar="NAME",
              help="Text encoding of REAL and HOLDOUT, e.g. cp1252 [default: UTF-8, or UTF-16 with a BOM].")
@quiet_option
def evaluate(real: Path, synthetic: Path, holdout: Path | None, target: str | None, report_path: Path | None,
             json_path: Path | None, categorical: str | None, numerical: str | None, seed: int, max_rows: int,
             floor: bool | None, sep: str | None, encoding: str | None, quiet: bool) -> None:
    """Score SYNTHETIC against REAL, the table the generator was fitted on (CSV or Parquet files).

    SYNTHETIC's separator is always sniffed: `tabgen sample` writes commas whatever REAL used.
    """
    # Imported here: sdmetrics, xgboost and matplotlib take a second to load, which `tabgen --help`
    # and the other commands should not pay.
    from .evaluation import evaluate as evaluate_tables
    from .evaluation import write_report
    from .schema import infer_schema

    for path in (report_path, json_path):
        # Refuse before the minutes of scoring, not after.
        if path and not path.absolute().parent.is_dir():
            raise TabgenError(f"cannot write {path}: folder {path.parent} does not exist")
    refuse_overwriting_inputs({"the report": report_path, "the scores file": json_path},
                              {"the real table": real, "the synthetic table": synthetic, "the holdout": holdout})
    sep = parse_separator(sep)
    real_df, synthetic_df = read_table(real, sep=sep, encoding=encoding), read_table(synthetic)
    holdout_df = read_table(holdout, sep=sep, encoding=encoding) if holdout else None
    if target is not None:
        for role, df, path in (("real", real_df, real), ("holdout", holdout_df, holdout)):
            if df is not None and target not in df.columns:
                raise TabgenError(f"target column {target!r} is not in the {role} file {path}")
    schema = infer_schema(real_df, categorical=_names(categorical), numerical=_names(numerical))
    result = evaluate_tables(real_df, synthetic_df, holdout=holdout_df, target=target, schema=schema,
                             seed=seed, max_rows=max_rows, floor=floor, progress=not quiet)
    if json_path:
        with atomic_write(json_path, "w") as f:
            json.dump(result.to_dict(), f, indent=2)
            f.write("\n")
    if report_path:
        write_report(result, real_df, synthetic_df, report_path, schema)
    click.echo(result.to_table())
    for label, path in (("report", report_path), ("scores", json_path)):
        if path:
            click.echo(f"{label} written to {path}")
