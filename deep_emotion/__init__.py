"""Deep-Emotion TFX: user-facing tools (CLI, demo data, prediction, reports) and the data contract."""
