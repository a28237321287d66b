"""Training: one loop for every method, its optimizer step, checkpoints, metrics and data parallelism."""
