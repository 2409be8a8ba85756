"""The original TensorFlow graph ``classify_image_graph_def.pb``, read without TensorFlow.

The graph keeps every weight in a ``Const`` node named by its scope: ``<scope>/conv2d_params``
(kernel, HWIO), ``<scope>/batchnorm/{beta,gamma,moving_mean,moving_variance}`` (gamma, when present,
is all ones) and ``softmax/weights`` (2048 x 1008), ``softmax/biases``. :data:`TF_SCOPES` maps every
convolution scope to its name in our network (the pytorch-fid layout), so the same table serves the
graph and any other port that kept TensorFlow's scope names.

The reader understands just enough of the protobuf wire format (GraphDef -> NodeDef -> AttrValue ->
TensorProto) to pull out the constants; large payloads are sliced, never parsed byte by byte.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import WeightsFormatError


def _towers(block: str, layout: dict[str, str]) -> dict[str, str]:
    return {f"{block}/{tf}" if tf else block: ours for tf, ours in layout.items()}


def _chain(tf_prefix: str, our_prefix: str, count: int) -> dict[str, str]:
    """``tower/conv, tower/conv_1, ...`` -> ``branch_1, branch_2, ...``."""
    names = ["conv"] + [f"conv_{i}" for i in range(1, count)]
    return {f"{tf_prefix}{name}": f"{our_prefix}{i + 1}" for i, name in enumerate(names)}


def _build_scopes() -> dict[str, str]:
    scopes = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
              "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
    block_a = {"conv": "branch1x1", **_chain("tower/", "branch5x5_", 2), **_chain("tower_1/", "branch3x3dbl_", 3),
               "tower_2/conv": "branch_pool"}
    block_b = {"conv": "branch3x3", **_chain("tower/", "branch3x3dbl_", 3)}
    block_c = {"conv": "branch1x1", **_chain("tower/", "branch7x7_", 3), **_chain("tower_1/", "branch7x7dbl_", 5),
               "tower_2/conv": "branch_pool"}
    block_d = {**_chain("tower/", "branch3x3_", 2), **_chain("tower_1/", "branch7x7x3_", 4)}
    block_e = {"conv": "branch1x1", "tower/conv": "branch3x3_1", "tower/mixed/conv": "branch3x3_2a",
               "tower/mixed/conv_1": "branch3x3_2b", "tower_1/conv": "branch3x3dbl_1",
               "tower_1/conv_1": "branch3x3dbl_2", "tower_1/mixed/conv": "branch3x3dbl_3a",
               "tower_1/mixed/conv_1": "branch3x3dbl_3b", "tower_2/conv": "branch_pool"}
    blocks = [("mixed", "Mixed_5b", block_a), ("mixed_1", "Mixed_5c", block_a), ("mixed_2", "Mixed_5d", block_a),
              ("mixed_3", "Mixed_6a", block_b), ("mixed_4", "Mixed_6b", block_c), ("mixed_5", "Mixed_6c", block_c),
              ("mixed_6", "Mixed_6d", block_c), ("mixed_7", "Mixed_6e", block_c), ("mixed_8", "Mixed_7a", block_d),
              ("mixed_9", "Mixed_7b", block_e), ("mixed_10", "Mixed_7c", block_e)]
    for tf_block, our_block, layout in blocks:
        for tf, ours in _towers(tf_block, layout).items():
            scopes[tf] = f"{our_block}.{ours}"
    return scopes


TF_SCOPES: dict[str, str] = _build_scopes()
"""TensorFlow scope of each of the 94 convolutions -> its prefix in our state dict."""


def state_dict_from_tf_tensors(tensors: dict[str, np.ndarray], kernel_layout: str = "HWIO") -> dict[str, torch.Tensor]:
    """TensorFlow-named tensors -> our 566-entry state dict.

    ``tensors`` maps ``<scope>/conv2d_params``, ``<scope>/batchnorm/beta`` ... and optionally
    ``softmax/weights`` / ``softmax/biases`` to arrays; kernels are converted from ``kernel_layout``
    ("HWIO" as in the graph, or "OIHW" when already converted) to OIHW. A missing tensor raises
    :class:`WeightsFormatError` naming it.
    """

    def need(name: str) -> np.ndarray:
        if name not in tensors:
            raise WeightsFormatError(f"the graph has no constant {name!r}; it is not the 2015-12-05 Inception graph")
        return tensors[name]

    state: dict[str, torch.Tensor] = {}
    for scope, prefix in TF_SCOPES.items():
        kernel = torch.from_numpy(np.array(need(f"{scope}/conv2d_params"), dtype=np.float32))
        if kernel_layout == "HWIO":
            kernel = kernel.permute(3, 2, 0, 1)
        state[f"{prefix}.conv.weight"] = kernel.contiguous()
        beta = torch.from_numpy(np.array(need(f"{scope}/batchnorm/beta"), dtype=np.float32))
        gamma_name = f"{scope}/batchnorm/gamma"
        gamma = tensors.get(gamma_name)
        state[f"{prefix}.bn.weight"] = torch.ones_like(beta) if gamma is None else torch.from_numpy(np.array(gamma, dtype=np.float32))
        state[f"{prefix}.bn.bias"] = beta
        state[f"{prefix}.bn.running_mean"] = torch.from_numpy(np.array(need(f"{scope}/batchnorm/moving_mean"), dtype=np.float32))
        state[f"{prefix}.bn.running_var"] = torch.from_numpy(np.array(need(f"{scope}/batchnorm/moving_variance"), dtype=np.float32))
        state[f"{prefix}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    if "softmax/weights" in tensors:
        state["fc.weight"] = torch.from_numpy(np.array(tensors["softmax/weights"], dtype=np.float32)).T.contiguous()
        state["fc.bias"] = torch.from_numpy(np.array(need("softmax/biases"), dtype=np.float32))
    return state


# --- protobuf wire format -------------------------------------------------------------------------
# Field numbers from TensorFlow's graph.proto, node_def.proto, attr_value.proto, tensor.proto,
# tensor_shape.proto and types.proto.
_GRAPH_NODE = 1
_NODE_NAME, _NODE_OP, _NODE_ATTR = 1, 2, 5
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_ATTR_TENSOR = 8
_TENSOR_DTYPE, _TENSOR_SHAPE, _TENSOR_CONTENT, _TENSOR_FLOAT_VAL, _TENSOR_INT_VAL = 1, 2, 4, 5, 7
_SHAPE_DIM, _DIM_SIZE = 2, 1
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WeightsFormatError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)``: an int for varints, a memoryview slice otherwise."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise WeightsFormatError("truncated protobuf field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        else:
            raise WeightsFormatError(f"unexpected protobuf wire type {wire}")
        if pos > end:
            raise WeightsFormatError("truncated protobuf field")
        yield number, wire, value


def _tensor(buf: memoryview) -> np.ndarray:
    dtype_code, shape, content = 1, [], None
    floats: list[np.ndarray] = []
    ints: list[int] = []
    for number, wire, value in _fields(buf):
        if number == _TENSOR_DTYPE:
            dtype_code = value
        elif number == _TENSOR_SHAPE:
            for dim_number, _, dim in _fields(value):
                if dim_number == _SHAPE_DIM:
                    size = 0
                    for n, _, v in _fields(dim):
                        if n == _DIM_SIZE:
                            size = v
                    shape.append(size)
        elif number == _TENSOR_CONTENT:
            content = value
        elif number == _TENSOR_FLOAT_VAL:
            floats.append(np.frombuffer(value, dtype="<f4"))  # packed, or one fixed32 value
        elif number == _TENSOR_INT_VAL:
            if wire == 2:
                pos = 0
                while pos < len(value):
                    v, pos = _varint(value, pos)
                    ints.append(v)
            else:
                ints.append(value)
    dtype = _DTYPES.get(dtype_code)
    if dtype is None:
        return np.zeros(0)  # strings and other types: never weights
    count = int(np.prod(shape)) if shape else 1
    if content is not None and len(content):
        array = np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    elif floats:
        array = np.concatenate(floats).astype(dtype)
    else:
        array = np.array(ints, dtype=dtype)
    if array.size == 1 and count > 1:  # TF stores a splat of one value
        array = np.full(count, array[0], dtype=dtype)
    if array.size != count:
        raise WeightsFormatError(f"a constant of shape {shape} holds {array.size} values")
    return array.reshape(shape)


def read_graph_def_constants(data: bytes) -> dict[str, np.ndarray]:
    """Every ``Const`` node of a serialised GraphDef: name -> array."""
    constants: dict[str, np.ndarray] = {}
    for number, wire, node in _fields(memoryview(data)):
        if number != _GRAPH_NODE or wire != 2:
            continue
        name = op = None
        tensor = None
        for field, _, value in _fields(node):
            if field == _NODE_NAME:
                name = bytes(value).decode("utf-8", "replace")
            elif field == _NODE_OP:
                op = bytes(value).decode("utf-8", "replace")
            elif field == _NODE_ATTR:
                key = attr = None
                for entry_field, _, entry_value in _fields(value):
                    if entry_field == _ENTRY_KEY:
                        key = bytes(entry_value)
                    elif entry_field == _ENTRY_VALUE:
                        attr = entry_value
                if key == b"value" and attr is not None:
                    for attr_field, _, attr_value in _fields(attr):
                        if attr_field == _ATTR_TENSOR:
                            tensor = attr_value
        if op == "Const" and name is not None and tensor is not None:
            constants[name] = _tensor(tensor)
    return constants


def state_dict_from_graph_def(data: bytes) -> dict[str, torch.Tensor]:
    """A serialised ``classify_image_graph_def.pb`` -> our state dict (kernels OIHW, fc transposed)."""
    try:
        constants = read_graph_def_constants(data)
    except WeightsFormatError as error:
        raise WeightsFormatError(f"not a readable GraphDef ({error}); the file may be truncated") from None
    if not constants:
        raise WeightsFormatError("no constants found: not a TensorFlow GraphDef")
    if "softmax/weights" not in constants:
        raise WeightsFormatError("the graph has no constant 'softmax/weights'; it is not the 2015-12-05 Inception graph")
    return state_dict_from_tf_tensors(constants)


def read_graph_def_bytes(path: Path) -> bytes:
    """The GraphDef bytes of a ``.pb`` file, or of the ``classify_image_graph_def.pb`` inside a ``.tgz``."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head != b"\x1f\x8b":
        return path.read_bytes()
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                if Path(member.name).name == "classify_image_graph_def.pb" and member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise WeightsFormatError(f"{path} is not a readable .tgz ({error}); download it again") from None
    raise WeightsFormatError(f"{path} holds no classify_image_graph_def.pb; is it inception-2015-12-05.tgz?")


__all__ = [
    "TF_SCOPES",
    "read_graph_def_bytes",
    "read_graph_def_constants",
    "state_dict_from_graph_def",
    "state_dict_from_tf_tensors",
]
