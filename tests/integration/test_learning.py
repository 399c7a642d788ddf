"""The learning check (README.md, "Does it learn?"): the `cpu_learn` variant (size1m, train ratio
1024, nothing else changed) learns bsuite catch within 18,000 frames: the mean return of its last
100 episodes reaches 0.5 (random play scores about −0.6).

One seed through the real launcher; on 2 cores it takes about 1–1.5 hours (the README's runs,
two side by side on one core each, crossed 0.5 after 13,360 and 15,390 frames, 63 and 74 minutes
of training). Run it with `pytest -m slow tests/integration/test_learning.py`.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cpu_learn_learns_catch(tmp_path):
    command = [sys.executable, "-m", "suites.run", "bsuite", "--tasks", "catch/0", "--seeds", "1",
               "--variant", "cpu_learn", "--budget", "18000", "--wait", "--results", str(tmp_path)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=4 * 3600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from dreamer.rundir import RunDir

    episodes = RunDir(tmp_path / "bsuite" / "cpu_learn-budget18000" / "catch-0" / "seed0").logs["scores"]
    scores = np.array([json.loads(line)["score"] for line in episodes.read_text().splitlines()])
    running = np.convolve(scores, np.ones(100) / 100, mode="valid")  # mean of each 100 consecutive episodes
    assert running.max() >= 0.5, running.max()
