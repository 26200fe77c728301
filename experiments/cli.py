"""The ``fourpl`` command line: run scenarios, list and validate them.

Bad input ends with one readable line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from market.scenario import (ScenarioError, builtin_scenarios, load_raw, load_scenario,
                             parameter_table, parse_value)

console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def parse_sets(items: tuple[str, ...]) -> dict:
    """--set key=value pairs into an overrides dict (values in TOML syntax)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--set '{item}': expected key=value, e.g. demand.scale=2")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ScenarioError(f"--set '{item}': the key is empty")
        out[key] = parse_value(value.strip())
    return out


class FourplGroup(click.Group):
    """Turns known input errors into one line and exit status 2."""

    def invoke(self, ctx):
        from experiments.run import OutputError
        try:
            return super().invoke(ctx)
        except (ScenarioError, OutputError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=FourplGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fourpl-market")
def main():
    """A multi-agent 4PL marketplace for cross-border e-commerce logistics."""


@main.command()
@click.option("--scenario", "-s", default="baseline", show_default=True,
              help="Built-in scenario name or path to a scenario TOML file.")
@click.option("--days", "-d", type=int, default=None, help="Days to simulate [default: the scenario's simulation.days].")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the run.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: results/<scenario>-seed<seed>].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set demand.scale=2 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace the output folder (only one an earlier fourpl run wrote, unchanged).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary table.")
def run(scenario, days, seed, out, sets, overwrite, quiet):
    """Run a scenario headless and write summary.json, timeseries.parquet, parcels.parquet,
    contracts.parquet, ledger.parquet, agents.parquet and config.toml into the output folder."""
    from experiments.outputs import default_run_folder
    from experiments.run import run_scenario
    overrides = parse_sets(sets)
    name = load_scenario(scenario, overrides).name
    out = out or default_run_folder(name, seed)          # the name as a safe slug: stays in results/
    result = run_scenario(scenario, days=days, seed=seed, out=out, overrides=overrides,
                          overwrite=overwrite, progress=not quiet)
    if not quiet:
        print_summary(result.summary, result.wall_seconds)
    console.print(f"results in [bold]{out}[/]", highlight=False)


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
    t = Table(title=f"{s['scenario']}: {s['days']} days, seed {s['seed']} ({wall:.1f} s)",
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
    t = Table(title="built-in scenarios", title_justify="left")
    t.add_column("name")
    t.add_column("description")
    for name, path in builtin_scenarios().items():
        t.add_row(name, load_raw(path).get("description", ""))
    console.print(t)
    if params:
        p = Table(title="parameters", title_justify="left")
        for c in ("key", "default", "range", "unit", "description", "source"):
            p.add_column(c, overflow="fold")
        for r in parameter_table():
            rng = " ".join(f"{k} {v}" for k, v in r["bounds"].items())
            p.add_row(r["key"], str(r["default"]) if len(str(r["default"])) < 40 else "(list)",
                      rng, r["unit"], r["description"], r["source"])
        console.print(p)


@main.command()
@click.argument("scenario_file")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a key before validating.")
def validate(scenario_file, sets):
    """Check a scenario file (or built-in name) against the schema; exit 2 with one line if it is wrong."""
    from market import Marketplace
    scn = load_scenario(scenario_file, parse_sets(sets))
    Marketplace(scn, rng=0)      # the world file, shocks and routes are checked as a run would
    console.print(f"[green]ok[/]: scenario '{scn.name}' is valid ({scn.simulation.days} days from "
                  f"{scn.simulation.start_date}, world '{scn.world}')", highlight=False)


@main.command()
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: results/sweeps/<experiment name>].")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes [default: all cores].")
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
    sweep_cli(experiment, out, workers, engine, scheduler, retry_failed, overwrite, quiet, console)


@main.command()
@click.argument("sweep_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: SWEEP_DIR/report].")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the headline table.")
def report(sweep_dir, out, quiet):
    """Analyse a sweep: mean and 95% confidence interval per design point, sensitivity indices
    (Sobol or Morris designs), PNG plots and one Markdown report linking them."""
    from experiments.report import report_cli
    report_cli(sweep_dir, out, quiet, console)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
def app(host, port, open_browser):
    """Serve the browser visualization (Solara) at http://HOST:PORT/, with Solara's browser
    assets from the local cache (downloaded from the npm registry on first use), so the page
    works offline. Ctrl-C stops it."""
    from viz.assets import AssetError
    from viz.serve import serve
    try:
        proc = serve(host=host, port=port, open_browser=open_browser, block=True)
    except (AssetError, FileNotFoundError, TimeoutError, RuntimeError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    if proc.returncode not in (0, None, -2, -15):   # stopped by Ctrl-C / SIGTERM is a normal end
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
