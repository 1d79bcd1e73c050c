"""Deep-Emotion TFX, the top layer: the `deep-emotion` commands (cli/), the report and notebooks'
code, predict, the run summary and the demo-data generator. Imports any layer below; none imports it."""
