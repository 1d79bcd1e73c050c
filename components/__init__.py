"""The pipeline's own TFX components, one folder each (tfx-addons layout: component.py, executor.py):
ExampleGen for the face datasets, DataGate, the TF Serving Pusher and ServedModel. On contract/ only."""


def __getattr__(name):
    """`components.ModelCard`: the model card artifact class by the path its TYPE_NAME names (loaded
    on first use, so importing a component's light modules does not import TFX)."""
    if name == "ModelCard":
        from components.model_card.component import ModelCard  # pylint: disable=import-outside-toplevel

        return ModelCard
    raise AttributeError(f"module 'components' has no attribute {name!r}")
