"""The learning check (README.md, "Does it learn?"): the `cpu_smoke` variant learns bsuite catch within 20,000 frames.

About 35 minutes on 2 cores; run with `pytest -m slow tests/integration/test_learning.py`. It
fails today (catch reaches −0.64, README "Does it learn?").
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cpu_smoke_learns_catch(tmp_path):
    command = [sys.executable, "-m", "suites.run", "bsuite", "--tasks", "catch/0", "--seeds", "1",
               "--variant", "cpu_smoke", "--budget", "20000", "--wait", "--results", str(tmp_path)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = tmp_path / "bsuite" / "cpu_smoke-budget20000" / "catch-0" / "seed0"
    scores = [json.loads(line)["score"] for line in (run / "scores.jsonl").read_text().splitlines()]
    # Random play scores about −0.6 on catch; learned means ≥ 0.5 over the last 100 episodes.
    assert np.mean(scores[-100:]) >= 0.5, np.mean(scores[-100:])
