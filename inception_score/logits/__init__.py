"""Logits files: the (N, 1008) float32 rows, their sidecar and the fingerprints of their images."""
