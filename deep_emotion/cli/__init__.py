"""`deep-emotion`: the project's command line, one module per verb in this package.

Verbs are imported only when invoked, so that `deep-emotion --help` answers at once instead of
after TensorFlow's import.
"""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import importlib  # noqa: E402

import click  # noqa: E402

# verb -> one-line help shown by --help without importing it; the verb's module is
# deep_emotion.cli.<verb with _ for -> and its click command is named `command`.
COMMANDS = {
    "config": "Print the pipeline settings in effect and their DEEP_EMOTION_* variables.",
    "demo-data": "Write synthetic faces in the FER2013, CK+, JAFFE and FERG formats.",
    "ingest": "Convert a data root to canonical TFRecords (train/eval/test) on Beam.",
    "kfp": "Compile, dry-run (run-local), submit and schedule the pipeline on Kubeflow Pipelines 2.x.",
    "predict": "Predict the emotion of images, folders or FER2013 CSV rows with a served model (JSON lines).",
    "report": "Write a run's data-validation and model-analysis report as one offline HTML file.",
    "schema-candidate": "Write the schema inferred from the latest run beside the curated one; print the diff.",
    "summary": "What the latest pipeline run did, where its outputs are, the pushed model's test accuracy.",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"{__name__}.{name.replace('-', '_')}").command

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Deep-Emotion TFX: data, pipeline, model and reports for facial-expression recognition."""


if __name__ == "__main__":
    main()
