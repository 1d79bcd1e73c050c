"""SpanResolver: the first task of a Kubeflow run (spans, fingerprint, served versions)."""
