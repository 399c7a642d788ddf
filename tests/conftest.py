import signal
from pathlib import Path

import pytest
import torch

from analysis.baselines import ENV_VAR, locate

REPO = Path(__file__).resolve().parents[1]
# Developers of this project keep a copy of the published files beside the clone.
DEVELOPMENT_COPY = REPO.parent / "shared" / "baselines"

# A shell that starts pytest in the background makes it ignore SIGINT, and an ignored signal stays
# ignored in every process it starts: the tests of Ctrl-C and of suites.stop would see their runs
# ignore it. A handled signal is reset to the default in children, so they get KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def baselines() -> Path:
    found = locate(REPO, [DEVELOPMENT_COPY])
    if found is None:
        pytest.skip(f"published score files not found: run `python -m analysis.baselines download` "
                    f"(saves them in results/baselines) or set {ENV_VAR} to a folder holding them")
    return found


@pytest.fixture(autouse=True)
def one_thread():
    """Tests run tiny models on two busy cores: one intra-op thread is several times faster than
    two spinning ones, and matches the CLI runs the tests start."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
