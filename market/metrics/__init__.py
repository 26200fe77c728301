"""What the model measures: daily figures, the run summary, market concentration.

- :mod:`~market.metrics.recorder`: the day's figures (the DataCollector's columns) and
  ``summary.json``;
- :mod:`~market.metrics.concentration`: market shares and HHI per segment.
"""
