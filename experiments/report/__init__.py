"""``fourpl report DIR``: what a sweep found, with its uncertainty, in tables, plots and one page.

From a sweep folder (see :mod:`experiments.sweep`) it writes into ``DIR/report`` (or ``--out``):

``point_summary.csv``
    per scenario and design point, for every numeric summary figure: runs, mean, standard
    deviation and the 95% confidence interval of the mean over replications (Student t).
``sensitivity.csv``
    Sobol (S1, ST and their confidence intervals) or Morris (mu*, sigma) indices of the
    headline figures, when the design was Sobol or Morris (SALib).
``plots/*.png``
    design points compared, channels compared, markets compared (with ``outputs.by_market``),
    daily series with 95% bands over replications, channel shares over time, prices and
    markups over time, and the sensitivity indices.
``report.md``
    one Markdown page linking all of it.
``fourpl-manifest.json``
    every file of the report with its sha256.

The report is written into a hidden staging folder and swapped into place when complete. The
report folder is replaced only if it is empty or an earlier ``fourpl report`` wrote it and it
holds nothing else, unchanged (no symlinks, no files added or edited): a linked ``plots/`` or
``report.md`` stops it with one line instead of writing through the link. See
:mod:`experiments.outputs`.

The package is split by job: :mod:`~experiments.report.stats` (means, intervals, sensitivity),
:mod:`~experiments.report.plots`, :mod:`~experiments.report.tables` (Markdown tables) and
:mod:`~experiments.report.page` (reading the sweep and writing the report).
"""

from experiments.report.page import Report, build_report, daily_columns, report_cli
from experiments.report.stats import mean_ci, point_summary, pooled_stats, sensitivity

__all__ = ["Report", "build_report", "daily_columns", "mean_ci", "point_summary", "pooled_stats",
           "report_cli", "sensitivity"]
