"""Calibration and validation against published figures.

- :mod:`~experiments.calibration.moments`: the figures of a run (moments) targets are compared with;
- :mod:`~experiments.calibration.targets`: targets files (``market/data/targets-2024.toml``,
  ``validation-2025.toml``), comparison with a run's replications, the loss;
- :mod:`~experiments.calibration.compare`: ``fourpl targets DIR`` on a run or sweep folder;
- :mod:`~experiments.calibration.calibrate`: ``fourpl calibrate`` (method of simulated
  moments, Optuna search, runs through the sweep engine).
"""
