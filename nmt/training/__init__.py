"""Training: the loop, checkpoints, run directories, signals, and the run of one `nmt-train`."""
