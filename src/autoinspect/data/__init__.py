"""Data stage: formats, validation, versions, per-image features, profiling and the synthetic generator."""
