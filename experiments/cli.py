"""The ``fourpl`` command line: run scenarios, list and validate them.

Bad input ends with one readable line on stderr and exit status 2, never a traceback: the
scenario and experiment errors of the library, the output-folder errors, and click's own usage
errors (an unknown option, a non-integer seed) alike.

The command starts fast: the model (Mesa, numpy, pandas, scipy) and even the scenario schema
(pydantic) are imported only by the commands that use them, not for ``--help``.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click

from market.limits import MAX_DAYS, MAX_SEED, one_line


def fail(message: str, status: int = 2):
    """End the command with ``error: message`` as one line on stderr."""
    click.echo(click.style("error:", fg="red", bold=True) + " " + one_line(str(message)), err=True)
    sys.exit(status)


def warn(message: str):
    click.echo(click.style("warning:", fg="yellow", bold=True) + " " + one_line(str(message)), err=True)


_console = None


def get_console():
    """The rich console of tables and results (rich is imported on first use)."""
    global _console
    if _console is None:
        from rich.console import Console
        _console = Console(width=None if sys.stdout.isatty() else 160)
    return _console


def plain(text) -> str:
    """``text`` with rich markup escaped: a path or name with [brackets] prints as it is."""
    from rich.markup import escape
    return escape(str(text))


def parse_sets(items: tuple[str, ...]) -> dict:
    """--set key=value pairs into an overrides dict (values in TOML syntax)."""
    from market.scenario import ScenarioError, parse_value, short
    out = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--set {short(item)}: expected key=value, e.g. demand.scale=2")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ScenarioError(f"--set {short(item)}: the key is empty")
        if key in out:
            raise ScenarioError(f"--set {short(key)} is given twice")
        out[key] = parse_value(value.strip())
    return out


def _input_error(exc: BaseException) -> bool:
    """Is ``exc`` bad input (a scenario, an experiment, an output folder) rather than a bug?"""
    kinds = []
    for module, name in (("market.scenario", "ScenarioError"), ("experiments.run", "OutputError")):
        mod = sys.modules.get(module)          # an error of a module never imported was not raised
        if mod is not None and hasattr(mod, name):
            kinds.append(getattr(mod, name))
    return isinstance(exc, tuple(kinds))


class FourplGroup(click.Group):
    """Turns known input errors, and click's usage errors, into one line and exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:        # unknown option, bad value, missing argument
            cmd = exc.ctx.command_path if exc.ctx is not None else "fourpl"
            fail(f"{exc.format_message()} (see '{cmd} --help')", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        except OSError as exc:
            if exc.errno == errno.EPIPE:        # output piped into head: not an error
                sys.exit(1)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _input_error(exc):
                fail(str(exc))
            raise


@click.group(cls=FourplGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fourpl-market")
def main():
    """A multi-agent 4PL marketplace for cross-border e-commerce logistics."""


@main.command()
@click.option("--scenario", "-s", default="baseline", show_default=True,
              help="Built-in scenario name or path to a scenario TOML file.")
@click.option("--days", "-d", type=click.IntRange(1, MAX_DAYS), default=None,
              help=f"Days to simulate, 1 to {MAX_DAYS} [default: the scenario's simulation.days].")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=1, show_default=True,
              help="Random seed of the run (a non-negative integer).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: results/<scenario>-seed<seed>].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set demand.scale=2 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace the output folder (only one an earlier fourpl run wrote, unchanged).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary table.")
def run(scenario, days, seed, out, sets, overwrite, quiet):
    """Run a scenario headless and write summary.json, timeseries.parquet, parcels.parquet,
    contracts.parquet, claims.parquet, invoices.parquet, returns.parquet, ledger.parquet,
    agents.parquet and config.toml into the output folder."""
    from market.scenario import load_scenario, shocks_never_applying
    from experiments.outputs import default_run_folder
    overrides = parse_sets(sets)
    scn = load_scenario(scenario, overrides)
    from experiments.run import run_scenario
    out = out or default_run_folder(scn.name, seed)      # the name as a safe slug: stays in results/
    result = run_scenario(scenario, days=days, seed=seed, out=out, overrides=overrides,
                          overwrite=overwrite, progress=not quiet)
    if not quiet:
        print_summary(result.summary, result.wall_seconds)
    # after the run: a refused run says one thing only, its error
    for why in shocks_never_applying(scn, days):
        warn(f"{why} (--days {days})" if days is not None else f"{why} (simulation.days = {scn.simulation.days})")
    get_console().print(f"results in [bold]{plain(out)}[/]", highlight=False)


def _fmt(v, kind=""):
    if v is None:
        return "-"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "usd":
        return f"${v:,.2f}"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"


def print_summary(s: dict, wall: float):
    from rich.table import Table
    from rich.text import Text
    console = get_console()
    t = Table(title=Text(f"{s['scenario']}: {s['days']} days, seed {s['seed']} ({wall:.1f} s)"),
              title_justify="left")
    cols = [("channel", ""), ("created", ""), ("delivered", ""), ("in transit", ""), ("lost", ""),
            ("on time", "pct"), ("mean days", ""), ("p95 days", ""), ("cost/parcel", "usd"),
            ("duty/parcel", "usd"), ("4PL share", "pct")]
    for c, _ in cols:
        t.add_column(c, justify="left" if c == "channel" else "right")
    keys = ["parcels_created", "parcels_delivered", "parcels_in_transit", "parcels_lost", "on_time_rate",
            "mean_lead_time_days", "p95_lead_time_days", "mean_logistics_cost", "mean_duty", "fourpl_share"]

    def row(label, f, style=None):
        t.add_row(label, *[_fmt(f[k], kind) for k, (_, kind) in zip(keys, cols[1:])], style=style)
    for ch, f in s["by_channel"].items():
        if f["parcels_created"]:
            row(ch, f)
    row("all", s, style="bold")
    console.print(t)
    console.print(f"ledger imbalance: {s['ledger_imbalance']:.2f} USD   stock-outs: {s['stockouts']:,}   "
                  f"contracts signed: {s['contracts_signed']:,}", highlight=False)


@main.command()
@click.option("--params", is_flag=True, help="Also list every scenario parameter with its default and source.")
def scenarios(params):
    """List the built-in scenarios (and, with --params, every parameter)."""
    from rich.table import Table
    from rich.text import Text

    from market.scenario import builtin_scenarios, load_raw, parameter_table
    console = get_console()
    t = Table(title="built-in scenarios", title_justify="left")
    t.add_column("name")
    t.add_column("description")
    for name, path in builtin_scenarios().items():
        t.add_row(Text(name), Text(str(load_raw(path).get("description", ""))))
    console.print(t)
    if params:
        p = Table(title="parameters", title_justify="left")
        for c in ("key", "default", "range", "unit", "description", "source"):
            p.add_column(c, overflow="fold")
        for r in parameter_table():
            rng = " ".join(f"{k} {v}" for k, v in r["bounds"].items())
            p.add_row(*(Text(x) for x in (
                r["key"], str(r["default"]) if len(str(r["default"])) < 40 else "(list)",
                rng, r["unit"], r["description"], r["source"])))
        console.print(p)


@main.command()
@click.argument("scenario_file")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a key before validating.")
def validate(scenario_file, sets):
    """Check a scenario file (or built-in name) against the schema; exit 2 with one line if it is wrong."""
    from market.scenario import load_scenario, shocks_never_applying
    scn = load_scenario(scenario_file, parse_sets(sets))
    from market.model import Marketplace
    Marketplace(scn, rng=0)      # the world file, shocks and routes are checked as a run would
    for why in shocks_never_applying(scn):
        warn(f"{why} (simulation.days = {scn.simulation.days})")
    get_console().print(f"[green]ok[/]: scenario '{plain(scn.name)}' is valid ({scn.simulation.days} days "
                        f"from {scn.simulation.start_date}, world '{plain(scn.world)}')", highlight=False)


@main.command()
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: results/sweeps/<experiment name>].")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--engine", type=click.Choice(["process", "dask"]), default="process", show_default=True,
              help="A local process pool, or Dask distributed.")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 [default: a local Dask cluster].")
@click.option("--retry-failed", is_flag=True, help="Run the failed runs of an earlier sweep again.")
@click.option("--overwrite", is_flag=True, help="Replace the output folder instead of resuming (only an earlier sweep's, unchanged).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep(experiment, out, workers, engine, scheduler, retry_failed, overwrite, quiet):
    """Run an experiment: scenarios x design points x replications, each run with its own seed.

    Finished runs are written at once into OUT (runs/, daily/: partitioned Parquet); started
    again on the same OUT, a sweep skips the runs already done."""
    from experiments.sweep import sweep_cli
    sweep_cli(experiment, out, workers, engine, scheduler, retry_failed, overwrite, quiet, get_console())


@main.command()
@click.argument("sweep_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: SWEEP_DIR/report].")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the headline table.")
def report(sweep_dir, out, quiet):
    """Analyse a sweep: mean and 95% confidence interval per design point, sensitivity indices
    (Sobol or Morris designs), PNG plots and one Markdown report linking them."""
    from experiments.report import report_cli
    report_cli(sweep_dir, out, quiet, get_console())


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--targets", "-t", "targets_file", default="2024", show_default=True,
              help="Targets: '2024' (market/data/targets-2024.toml), 'validation-2025', or a targets TOML file.")
def targets(folder, targets_file):
    """Compare a run or a sweep with published targets: per target the model's mean (with its
    95% t-interval over replications in a sweep), the published band, its source, and whether
    the model is inside it. FOLDER is a `fourpl run` or `fourpl sweep` output folder."""
    from experiments.calibration.compare import targets_cli
    targets_cli(folder, targets_file, get_console())


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: results/calibration/<spec name>].")
@click.option("--trials", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Complete trials to reach in all (a resumed calibration counts the earlier ones).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop asking for new trials after this many seconds (the batch under way finishes; each call runs at least one batch).")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--engine", type=click.Choice(["process", "dask"]), default="process", show_default=True,
              help="A local process pool, or Dask distributed.")
@click.option("--scheduler", "--dask", metavar="ADDRESS", default=None,
              help="Dask scheduler address (implies --engine dask) [default with --engine dask: a local Dask cluster].")
@click.option("--overwrite", is_flag=True, help="Replace the output folder instead of resuming (only an earlier calibration's).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def calibrate(spec, out, trials, timeout, workers, engine, scheduler, overwrite, quiet):
    """Calibrate free parameters to published targets (method of simulated moments, Optuna).

    SPEC is a calibration TOML file: scenario, free parameters with ranges (only keys the schema
    marks as assumptions), targets, replications (common random numbers) and seed. Writes
    calibrated.toml, trials.parquet and report.md into OUT; started again on the same OUT, it
    resumes and its trial count continues."""
    from experiments.calibration.calibrate import calibrate_cli
    if scheduler and engine == "process":       # --dask ADDRESS alone means the Dask engine
        engine = "dask"
    calibrate_cli(spec, out, trials, timeout, workers, engine, scheduler, overwrite, quiet, get_console())


@main.command()
@click.argument("results_dir", required=False, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
def app(results_dir, host, port, open_browser):
    """Serve the browser visualization (Solara) at http://HOST:PORT/, with Solara's browser
    assets from the local cache (downloaded from the npm registry on first use), so the page
    works offline. With RESULTS_DIR (a `fourpl run` or `fourpl sweep` output folder) the page
    opens with its runs (a sweep's design points, as means with confidence bands) kept and
    overlaid. Ctrl-C stops it."""
    from viz.assets import AssetError
    from viz.serve import serve
    extra_env = {}
    if results_dir is not None:
        from viz.runs import LoadError, open_results
        try:
            open_results(results_dir)   # a bad folder fails here, with one line, before serving
        except LoadError as exc:
            fail(str(exc))
        extra_env["FOURPL_APP_OPEN"] = str(results_dir.expanduser().resolve())
    try:
        proc = serve(host=host, port=port, open_browser=open_browser, block=True, extra_env=extra_env)
    except (AssetError, FileNotFoundError, TimeoutError, RuntimeError) as exc:
        fail(str(exc), 1)
    if proc.returncode not in (0, None, -2, -15):   # stopped by Ctrl-C / SIGTERM is a normal end
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
