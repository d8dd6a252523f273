import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on a 2-core CI machine: one intra-op thread keeps them predictable."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
