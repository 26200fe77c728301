"""Limits on what a run accepts, and the one-line form of error messages.

Kept free of heavy imports: the ``fourpl`` command reads these while it starts.
"""

from __future__ import annotations

MAX_DAYS = 3650                  # the longest run: simulation.days, fourpl run --days, experiments
MAX_SEED = 2 ** 63 - 1           # a run's seed: written as a TOML integer (64-bit signed) in config.toml


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line (control characters escaped) and at most ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit - 4] + " ..."
