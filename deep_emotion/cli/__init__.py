"""`deep-emotion`: the project's command line.

Sub-commands live beside the code they drive and are imported only when invoked, so that
`deep-emotion --help` answers at once instead of after TensorFlow's import.
"""
from deep_emotion.runtime import quiet_tensorflow

quiet_tensorflow()

import importlib  # noqa: E402

import click  # noqa: E402

# command name -> ("module:click command", one-line help shown by --help without importing it)
COMMANDS = {
    "demo-data": ("deep_emotion.demo_data.cli:demo_data",
                  "Write synthetic faces in the FER2013, CK+, JAFFE and FERG formats."),
    "ingest": ("components.example_gen.ingest:ingest",
               "Convert a data root to canonical TFRecords (train/eval/test) on Beam."),
    "summary": ("deep_emotion.summary:summary",
                "What the latest pipeline run did, where its outputs are, the pushed model's test accuracy."),
    "kfp": ("pipeline.kfp_cli:kfp",
            "Compile, submit and schedule the pipeline on Kubeflow Pipelines 2.x."),
    "predict": ("deep_emotion.predict:predict",
                "Predict the emotion of images, folders or FER2013 CSV rows with a served model (JSON lines)."),
    "report": ("deep_emotion.report.cli:report",
               "Write a run's data-validation and model-analysis report as one offline HTML file."),
    "schema-candidate": ("deep_emotion.schema_review:schema_candidate",
                         "Write the schema inferred from the latest run beside the curated one; print the diff."),
    "config": ("deep_emotion.cli:config",
               "Print the pipeline settings in effect and their DEEP_EMOTION_* variables."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Deep-Emotion TFX: data, pipeline, model and reports for facial-expression recognition."""


@click.command("config")
def config():
    """Print the pipeline settings in effect and their DEEP_EMOTION_* variables."""
    from pipeline import configs

    click.echo(configs.describe())


if __name__ == "__main__":
    main()
