"""The protocol's constants, importable without torch (the command line's options need them before
anything heavy is loaded)."""

from __future__ import annotations

InputRange = tuple[float, float]
# uint8 pixels' range, and the one every float input is mapped to before the network sees it.
PIXEL_RANGE: InputRange = (0.0, 255.0)
# Value ranges a float input may declare (--input-range); uint8 pixels need none.
NAMED_RANGES: dict[str, InputRange] = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": PIXEL_RANGE}
TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed for its shuffle
PUBLISHED_IMAGES, PUBLISHED_SPLITS = 50_000, 10  # published scores: 50,000 images, 10 splits (the paper's code)
# guided-diffusion's evaluator cuts chunks of this size: at 50,000 images, the same 10 splits.
PUBLISHED_SPLIT_SIZE = PUBLISHED_IMAGES // PUBLISHED_SPLITS
# How score_generator may draw z (inception_score.generator says how each is drawn).
Z_DISTRIBUTIONS = ("normal", "uniform", "uniform-0-1", "unit", "sobol-normal")
# The device of a score re-computed from a logits file whose sidecar does not name the rows' device.
RESCORED_DEVICE = "none (re-scored from logits)"
# torch-fidelity's KID defaults (torch_fidelity/defaults.py: kid_subsets, kid_subset_size, rng_seed).
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = TORCH_FIDELITY_SEED
