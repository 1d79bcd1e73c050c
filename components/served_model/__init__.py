"""ServedModel: the model TF Serving serves now, as the Evaluator's baseline (Kubeflow's Resolver stand-in)."""
