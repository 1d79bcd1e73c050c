"""One small demo data root with every format, written once for all demo-data tests."""
import pytest

from deep_emotion.demo_data import FORMATS, generate

N_ROWS = 400  # small, but enough for every class in every Usage split


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """(root path, summary) of generate(..., every format, seed 0)."""
    root = tmp_path_factory.mktemp("demo") / "data"
    return root, generate(root, n=N_ROWS, seed=0, formats=FORMATS)
