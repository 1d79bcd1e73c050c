"""GPU figures without TensorFlow on the GPU machine: export_xla.py (here, with TF) writes our train
and inference steps as XLA HLO; run_xla.py (there, with jaxlib only) compiles and times them."""
