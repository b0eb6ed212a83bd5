"""The console scripts: thin Hydra mains over the library."""
