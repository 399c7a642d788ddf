import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tests run tiny models on two busy cores: one intra-op thread is several times faster than
    two spinning ones, and matches the CLI runs the tests start."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
