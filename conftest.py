"""Root conftest: applies to tests in tests/ and beside components alike."""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def fake_saved_model():
    """Writes a minimal SavedModel-shaped directory (saved_model.pb + variables/) whose content is
    `weights`: enough for code that copies, fingerprints or versions models without loading them."""

    def write(path, weights: str) -> str:
        os.makedirs(os.path.join(path, "variables"), exist_ok=True)
        with open(os.path.join(path, "variables", "variables.data-00000-of-00001"), "w") as f:
            f.write(weights)
        with open(os.path.join(path, "saved_model.pb"), "w") as f:
            f.write("graph")
        return str(path)

    return write
