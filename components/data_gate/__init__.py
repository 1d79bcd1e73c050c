"""DataGate: stops the pipeline when ExampleValidator found anomalies."""
