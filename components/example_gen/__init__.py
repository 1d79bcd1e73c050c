"""example_gen."""
