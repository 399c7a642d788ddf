"""DreamerV3: the agent, replay, training loop and benchmark (see dreamer/README.md)."""
import os

# OpenMP's default wait policy spins a thread that waits for its partner; on a machine whose cores
# are also busy with other work (a second run, an environment, a test), the spinning threads steal
# the cores their partners need: a size1m update with 2 threads beside two busy processes took
# 1.5–1.9 s spinning and 0.53–0.64 s passive. It must be set before torch loads OpenMP, so it is
# set here, on the first import of the package; an explicit OMP_WAIT_POLICY is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
