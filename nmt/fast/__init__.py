"""The fast CPU layer: kernels and settings that compute what the reference models compute,
faster on CPU."""
