"""Logs → tables and plots (analysis/README.md).

load (published files and run dirs → one DataFrame) → scoring (one number per run by the suite's
rule) → aggregate (rliable statistics) → tables / plots, driven by `python -m analysis.report`.
reference holds the Atari reference scores and the manifest that `python -m analysis.baselines
download` verifies.
"""
