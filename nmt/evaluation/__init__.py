"""Evaluation: metrics, significance, scoring a split, plots and the `nmt-report` comparison."""
