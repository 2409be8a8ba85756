"""Reference sets for FID, sFID, KID and precision/recall: guided-diffusion's reference batches and statistics-only
.npz files, read and checked (more to come: references built from images and cached by content)."""
