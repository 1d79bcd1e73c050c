"""Root conftest: applies to tests in tests/ and beside components alike."""
from deep_emotion.runtime import quiet_tensorflow

quiet_tensorflow()
