"""The pipeline's own TFX components, one folder each (tfx-addons layout: component.py, executor.py):
ExampleGen for the face datasets, DataGate, the TF Serving Pusher and ServedModel. On contract/ only."""
