"""The original TensorFlow graph ``classify_image_graph_def.pb``, read without TensorFlow.

The graph keeps every weight in a ``Const`` node named by its scope: ``<scope>/conv2d_params``
(kernel, HWIO), ``<scope>/batchnorm/{beta,gamma,moving_mean,moving_variance}`` (gamma is unused by the graph's
batch norms: the scale is one) and ``softmax/weights`` (2048 x 1008), ``softmax/biases``. :data:`TF_SCOPES` maps every
convolution scope to its name in our network (the pytorch-fid layout), so the same table serves the
graph and any other port that kept TensorFlow's scope names.

The reader understands just enough of the protobuf wire format (GraphDef -> NodeDef -> AttrValue ->
TensorProto) to pull out the constants; large payloads are sliced, never parsed byte by byte.
"""

from __future__ import annotations

import math
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..readers.bounded_read import read_at_most, read_tar_members
from ..errors import WeightsFormatError


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

TF_SOFTMAX: dict[str, str] = {"softmax/weights": "fc.weight", "softmax/biases": "fc.bias"}
"""The softmax layer's constants -> our keys (``softmax/weights`` (2048, 1008) is transposed)."""


def state_dict_from_tf_tensors(tensors: dict[str, np.ndarray], kernel_layout: str = "HWIO") -> dict[str, torch.Tensor]:
    """TensorFlow-named tensors -> our state dict: 564 entries, 566 with the softmax layer.

    ``tensors`` maps ``<scope>/conv2d_params``, ``<scope>/batchnorm/beta`` ... and optionally
    ``softmax/weights`` / ``softmax/biases`` to arrays; kernels are converted from ``kernel_layout``
    ("HWIO" as in the graph, or "OIHW" when already converted) to OIHW. A missing tensor raises
    :class:`WeightsFormatError` naming it.
    """
    if kernel_layout not in ("HWIO", "OIHW"):
        raise ValueError(f"kernel_layout must be 'HWIO' or 'OIHW', not {kernel_layout!r}")

    def need(name: str) -> np.ndarray:
        if name not in tensors:
            raise WeightsFormatError(
                f"the graph has no constant {name!r}: the file is truncated or not the 2015-12-05 Inception graph"
            )
        return tensors[name]

    state: dict[str, torch.Tensor] = {}
    for scope, prefix in TF_SCOPES.items():
        kernel = torch.from_numpy(np.array(need(f"{scope}/conv2d_params"), dtype=np.float32))
        if kernel.ndim != 4:
            raise WeightsFormatError(f"constant '{scope}/conv2d_params' has shape {tuple(kernel.shape)}, not a 4-d kernel")
        if kernel_layout == "HWIO":
            kernel = kernel.permute(3, 2, 0, 1)
        state[f"{prefix}.conv.weight"] = kernel.contiguous()
        beta = torch.from_numpy(np.array(need(f"{scope}/batchnorm/beta"), dtype=np.float32))
        # The graph stores a '<scope>/batchnorm/gamma' too, but its batch-norm ops do not scale
        # (they read beta, mean and variance only), so the scale is one whatever that constant holds.
        state[f"{prefix}.bn.weight"] = torch.ones_like(beta)
        state[f"{prefix}.bn.bias"] = beta
        state[f"{prefix}.bn.running_mean"] = torch.from_numpy(np.array(need(f"{scope}/batchnorm/moving_mean"), dtype=np.float32))
        state[f"{prefix}.bn.running_var"] = torch.from_numpy(np.array(need(f"{scope}/batchnorm/moving_variance"), dtype=np.float32))
        state[f"{prefix}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    if "softmax/weights" in tensors:
        weights = np.array(tensors["softmax/weights"], dtype=np.float32)
        state[TF_SOFTMAX["softmax/weights"]] = torch.from_numpy(weights).T.contiguous()  # (1008, 2048)
        state[TF_SOFTMAX["softmax/biases"]] = torch.from_numpy(np.array(need("softmax/biases"), dtype=np.float32))
    return state


# --- protobuf wire format -------------------------------------------------------------------------
# Field numbers from TensorFlow's graph.proto, node_def.proto, attr_value.proto, tensor.proto,
# tensor_shape.proto and types.proto.
_GRAPH_NODE = 1
_NODE_NAME, _NODE_OP, _NODE_ATTR = 1, 2, 5
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_ATTR_TENSOR = 8
_TENSOR_DTYPE, _TENSOR_SHAPE, _TENSOR_CONTENT = 1, 2, 4
_SHAPE_DIM, _DIM_SIZE = 2, 1
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5
# The largest real constant is softmax/weights, 2048 x 1008 values; a one-value splat of a corrupted
# shape must not be allowed to allocate gigabytes.
_MAX_ELEMENTS = 1 << 27
# DataType -> (numpy type, TensorProto field of its "*_val" values, how one value is encoded).
# Other types (strings, complex, half, resources) never hold weights: such constants are skipped.
_DTYPES: dict[int, tuple[type, int, str]] = {
    1: (np.float32, 5, "<f4"),  # DT_FLOAT, float_val
    2: (np.float64, 6, "<f8"),  # DT_DOUBLE, double_val
    3: (np.int32, 7, "varint"),  # DT_INT32, int_val
    4: (np.uint8, 7, "varint"),  # DT_UINT8, int_val
    5: (np.int16, 7, "varint"),  # DT_INT16, int_val
    6: (np.int8, 7, "varint"),  # DT_INT8, int_val
    9: (np.int64, 10, "varint"),  # DT_INT64, int64_val
    10: (np.bool_, 11, "varint"),  # DT_BOOL, bool_val
}


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
        if shift > 63:
            raise WeightsFormatError("protobuf varint longer than 10 bytes")


def _signed(value: int) -> int:
    """A varint read as int64: negative int32/int64 values are sent as 10-byte two's complement."""
    value &= (1 << 64) - 1  # as protobuf does with the excess bits of a 10-byte varint
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)``: an int for varints, a memoryview slice otherwise.

    Length-delimited payloads are sliced, not copied or scanned, so a 8 MB tensor costs O(1) here.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WeightsFormatError("protobuf field number 0")
        if wire == _WIRE_VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _WIRE_BYTES:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise WeightsFormatError("truncated protobuf field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (_WIRE_FIXED32, _WIRE_FIXED64):
            size = 4 if wire == _WIRE_FIXED32 else 8
            if pos + size > end:
                raise WeightsFormatError("truncated protobuf field")
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise WeightsFormatError(f"unexpected protobuf wire type {wire}")
        yield number, wire, value


def _values(chunks: list[tuple[int, int | memoryview]], encoding: str) -> np.ndarray:
    """The ``*_val`` field's values, packed (one length-delimited run) or not (one field each)."""
    if encoding == "varint":
        numbers: list[int] = []
        for wire, chunk in chunks:
            if wire == _WIRE_BYTES:  # packed; only small constants (shapes, indices) use int_val
                pos = 0
                while pos < len(chunk):
                    value, pos = _varint(chunk, pos)
                    numbers.append(_signed(value))
            elif wire == _WIRE_VARINT:
                numbers.append(_signed(chunk))
            else:
                raise WeightsFormatError(f"an integer value with wire type {wire}")
        return np.array(numbers, dtype=np.int64)
    parts = []
    for wire, chunk in chunks:
        if isinstance(chunk, int) or len(chunk) % np.dtype(encoding).itemsize:
            raise WeightsFormatError(f"a floating-point value list of wire type {wire} with a partial value")
        parts.append(np.frombuffer(chunk, dtype=encoding))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=encoding)


def _tensor(buf: memoryview) -> np.ndarray | None:
    """A TensorProto -> array of its shape, or None for a type that cannot hold weights."""
    dtype_code, shape, content = 0, [], None
    val_chunks: dict[int, list[tuple[int, int | memoryview]]] = {}
    for number, wire, value in _fields(buf):
        if number == _TENSOR_DTYPE and wire == _WIRE_VARINT:
            dtype_code = value
        elif number == _TENSOR_SHAPE and wire == _WIRE_BYTES:
            for dim_number, dim_wire, dim in _fields(value):
                if dim_number == _SHAPE_DIM and dim_wire == _WIRE_BYTES:
                    size = 0
                    for n, w, v in _fields(dim):
                        if n == _DIM_SIZE and w == _WIRE_VARINT:
                            size = _signed(v)
                    shape.append(size)
        elif number == _TENSOR_CONTENT and wire == _WIRE_BYTES:
            content = value
        else:
            val_chunks.setdefault(number, []).append((wire, value))
    if dtype_code not in _DTYPES:
        return None
    dtype, val_field, encoding = _DTYPES[dtype_code]
    if any(size < 0 for size in shape):
        raise WeightsFormatError(f"a constant of unknown shape {shape}")
    count = math.prod(shape)  # Python ints: a corrupted shape must not overflow silently
    if count > _MAX_ELEMENTS:
        raise WeightsFormatError(f"a constant of implausible shape {shape}")
    if content is not None and len(content):
        itemsize = np.dtype(dtype).itemsize
        if len(content) != count * itemsize:
            raise WeightsFormatError(f"a constant of shape {shape} holds {len(content)} bytes, expected {count * itemsize}")
        # TensorFlow writes tensor_content little-endian; one copy, so the array does not pin the file.
        return np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    values = _values(val_chunks.get(val_field, []), encoding)
    if values.size > count:
        raise WeightsFormatError(f"a constant of shape {shape} holds {values.size} values")
    if values.size == 0:
        values = np.zeros(count, dtype=dtype)  # TensorFlow's default for an empty value list
    elif values.size < count:
        # TensorFlow repeats the last value to fill the shape (how one value encodes a splat).
        values = np.concatenate([values, np.full(count - values.size, values[-1], dtype=values.dtype)])
    return values.astype(dtype).reshape(shape)


def _text(value: int | memoryview, what: str) -> str:
    if isinstance(value, int):
        raise WeightsFormatError(f"a NodeDef {what} that is not a string")
    return bytes(value).decode("utf-8", "replace")


def _node_constant(node: int | memoryview) -> tuple[str, memoryview] | None:
    """A NodeDef -> (name, its ``value`` attr's TensorProto bytes) when it is a ``Const``, else None."""
    if isinstance(node, int):
        raise WeightsFormatError("a GraphDef node that is not a message")
    name = op = None
    tensor = None
    for field, wire, value in _fields(node):
        if field == _NODE_NAME:
            name = _text(value, "name")
        elif field == _NODE_OP:
            op = _text(value, "op")
        elif field == _NODE_ATTR and wire == _WIRE_BYTES:
            key = attr = None
            for entry_field, entry_wire, entry_value in _fields(value):
                if entry_field == _ENTRY_KEY and entry_wire == _WIRE_BYTES:
                    key = bytes(entry_value)
                elif entry_field == _ENTRY_VALUE and entry_wire == _WIRE_BYTES:
                    attr = entry_value
            if key == b"value" and attr is not None:
                for attr_field, attr_wire, attr_value in _fields(attr):
                    if attr_field == _ATTR_TENSOR and attr_wire == _WIRE_BYTES:
                        tensor = attr_value
    if op != "Const" or name is None or tensor is None:
        return None
    return name, tensor


def read_graph_def_constants(data: bytes) -> dict[str, np.ndarray]:
    """Every numeric ``Const`` node of a serialised GraphDef: node name -> array of its shape.

    Float, double and integer constants are returned in their own dtype (``float32`` for all the
    weights); string and other non-numeric constants are left out. Raises :class:`WeightsFormatError`
    (naming the node where known) when the bytes are not a well-formed GraphDef.
    """
    constants: dict[str, np.ndarray] = {}
    for number, wire, node in _fields(memoryview(data)):
        if number != _GRAPH_NODE:
            continue  # versions, library: nothing to read
        if wire != _WIRE_BYTES:
            raise WeightsFormatError(f"GraphDef field 'node' with wire type {wire}")
        found = _node_constant(node)
        if found is None:
            continue
        name, tensor = found
        try:
            array = _tensor(tensor)
        except WeightsFormatError as error:
            raise WeightsFormatError(f"constant {name!r}: {error}") from None
        if array is not None:
            constants[name] = array
    return constants


def state_dict_from_graph_def(data: bytes) -> dict[str, torch.Tensor]:
    """A serialised ``classify_image_graph_def.pb`` -> our 566-entry state dict.

    Kernels ``(kh, kw, in, out)`` become ``conv.weight`` ``(out, in, kh, kw)``; ``softmax/weights``
    ``(2048, 1008)`` becomes ``fc.weight`` ``(1008, 2048)``; ``bn.weight`` is ones (the graph has no
    batch-norm scale); ``num_batches_tracked`` is zero. Messages do not name the file; the caller
    (:func:`inception_score.network.weights.load_weights`) prefixes its path.
    """
    try:
        constants = read_graph_def_constants(data)
    except WeightsFormatError as error:
        raise WeightsFormatError(f"not a readable GraphDef ({error}); the file may be truncated or of another format") from None
    if not constants:
        raise WeightsFormatError("no constants found: not a TensorFlow GraphDef")
    if "softmax/weights" not in constants:
        # A file cut exactly between two nodes parses cleanly; only the missing tensors tell.
        raise WeightsFormatError(
            "the graph has no constant 'softmax/weights': the file is truncated or not the 2015-12-05 Inception graph"
        )
    return state_dict_from_tf_tensors(constants)


GRAPH_NAME = "classify_image_graph_def.pb"
# The genuine graph is 95,673,916 bytes; any graph of this network's tensors in float32 is about as large.
# A .tgz is refused when its graph inflates past this, before the machine's memory is spent on it.
MAX_GRAPH_BYTES = 128 * 2**20


def read_graph_def_bytes(path: str | os.PathLike) -> bytes:
    """The GraphDef bytes of a ``.pb`` file, or of the ``classify_image_graph_def.pb`` inside a ``.tgz``
    (recognised by its gzip magic, read in memory without unpacking to disk), at most ``MAX_GRAPH_BYTES``.

    Raises :class:`WeightsFormatError` naming ``path`` for a damaged archive, one without the graph, or a
    graph over the limit.
    """
    path = Path(path)
    too_large = (f"over the limit of {MAX_GRAPH_BYTES:,} bytes (the genuine {GRAPH_NAME} is 95,673,916); "
                 f"it is not a 2015-12-05 Inception graph: give the genuine inception-2015-12-05.tgz")
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            handle.seek(0)
            data = read_at_most(handle, MAX_GRAPH_BYTES, os.fstat(handle.fileno()).st_size)
            if data is None:
                raise WeightsFormatError(f"{path} holds more than {MAX_GRAPH_BYTES:,} bytes, {too_large}")
            return data
    try:
        found = read_tar_members(path, {GRAPH_NAME}, MAX_GRAPH_BYTES)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise WeightsFormatError(f"{path} is not a readable .tgz ({error}); download it again") from None
    if GRAPH_NAME not in found:
        raise WeightsFormatError(f"{path} holds no {GRAPH_NAME}; is it inception-2015-12-05.tgz?")
    if found[GRAPH_NAME] is None:
        raise WeightsFormatError(f"{path}: its {GRAPH_NAME} inflates to more than {MAX_GRAPH_BYTES:,} bytes, {too_large}")
    return found[GRAPH_NAME]  # type: ignore[return-value]


__all__ = [
    "GRAPH_NAME",
    "MAX_GRAPH_BYTES",
    "TF_SCOPES",
    "TF_SOFTMAX",
    "read_graph_def_bytes",
    "read_graph_def_constants",
    "state_dict_from_graph_def",
    "state_dict_from_tf_tensors",
]
