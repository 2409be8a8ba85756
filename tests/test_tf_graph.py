"""The pure-Python GraphDef reader against GraphDefs written by an independent encoder (the protobuf
package, with message types declared here from TensorFlow's field numbers)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from inception_score.errors import WeightsFormatError, WeightsHashError
from inception_score.network.inception import Inception2015
from inception_score.network.tf_graph import TF_SCOPES, read_graph_def_bytes, read_graph_def_constants, state_dict_from_graph_def
from inception_score.network.weights import TF_GRAPH, load_weights

descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
message_factory = pytest.importorskip("google.protobuf.message_factory")
descriptor_pool = pytest.importorskip("google.protobuf.descriptor_pool")


def graph_def_classes():
    """GraphDef, NodeDef, AttrValue, TensorProto, TensorShapeProto with TensorFlow's field numbers."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="tf_subset.proto", package="tfsub", syntax="proto3")

    def message(name, fields, nested=()):
        msg = file.message_type.add(name=name)
        for nested_msg in nested:
            msg.nested_type.add().CopyFrom(nested_msg)
        for field_name, number, kind, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
        return msg

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    dim = descriptor_pb2.DescriptorProto(name="Dim")
    dim.field.add(name="size", number=1, type=F.TYPE_INT64, label=opt)
    dim.field.add(name="name", number=2, type=F.TYPE_STRING, label=opt)
    message("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, rep, ".tfsub.TensorShapeProto.Dim")], nested=[dim])
    message("TensorProto", [
        ("dtype", 1, F.TYPE_INT32, opt, None),  # an enum on the wire is a varint too
        ("tensor_shape", 2, F.TYPE_MESSAGE, opt, ".tfsub.TensorShapeProto"),
        ("tensor_content", 4, F.TYPE_BYTES, opt, None),
        ("float_val", 5, F.TYPE_FLOAT, rep, None),
        ("int_val", 7, F.TYPE_INT32, rep, None),
        ("string_val", 8, F.TYPE_BYTES, rep, None),
        ("int64_val", 10, F.TYPE_INT64, rep, None),
    ])
    message("AttrValue", [
        ("s", 2, F.TYPE_BYTES, opt, None),
        ("tensor", 8, F.TYPE_MESSAGE, opt, ".tfsub.TensorProto"),
    ])
    entry = descriptor_pb2.DescriptorProto(name="AttrEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=opt, type_name=".tfsub.AttrValue")
    entry.options.map_entry = True
    message("NodeDef", [
        ("name", 1, F.TYPE_STRING, opt, None),
        ("op", 2, F.TYPE_STRING, opt, None),
        ("input", 3, F.TYPE_STRING, rep, None),
        ("attr", 5, F.TYPE_MESSAGE, rep, ".tfsub.NodeDef.AttrEntry"),
    ], nested=[entry])
    message("GraphDef", [("node", 1, F.TYPE_MESSAGE, rep, ".tfsub.NodeDef")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tfsub.{name}")) for name in ("GraphDef",)}


def encode_graph(
    constants: dict[str, np.ndarray],
    splat: dict[str, tuple[float, tuple[int, ...]]] = {},
    extra: Callable[[Any], None] | None = None,
) -> bytes:
    """A GraphDef holding ``constants`` as float tensor_content, ``splat`` as one float_val filling
    its shape; ``extra(graph)`` may add further nodes."""
    graph = graph_def_classes()["GraphDef"]()
    graph.node.add(name="DecodeJpeg/contents", op="Placeholder")
    for name, array in constants.items():
        node = graph.node.add(name=name, op="Const")
        node.attr["dtype"].s = b"unused"
        tensor = node.attr["value"].tensor
        tensor.dtype = 1  # DT_FLOAT
        for size in array.shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = array.astype("<f4").tobytes()
        graph.node.add(name=name + "/read", op="Identity", input=[name])
    for name, (value, shape) in splat.items():
        node = graph.node.add(name=name, op="Const")
        tensor = node.attr["value"].tensor
        tensor.dtype = 1
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.float_val.append(value)
    if extra is not None:
        extra(graph)
    return graph.SerializeToString()


def real_layout_constants(seed: int) -> dict[str, np.ndarray]:
    """Random values in every real name and shape (kernels HWIO, softmax 2048 x 1008)."""
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(v.shape) for k, v in Inception2015().state_dict().items()}
    constants = {}
    for scope, prefix in TF_SCOPES.items():
        out_c, in_c, kh, kw = shapes[f"{prefix}.conv.weight"]
        constants[f"{scope}/conv2d_params"] = rng.normal(size=(kh, kw, in_c, out_c)).astype(np.float32)
        for part in ("beta", "moving_mean", "moving_variance"):
            constants[f"{scope}/batchnorm/{part}"] = rng.normal(size=out_c).astype(np.float32)
    constants["softmax/weights"] = rng.normal(size=(2048, 1008)).astype(np.float32)
    constants["softmax/biases"] = rng.normal(size=1008).astype(np.float32)
    return constants


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, np.ndarray], bytes]:
    constants = real_layout_constants(0)
    # gamma as a one-value splat, and not 1: the graph's batch norms ignore it (no scale).
    return constants, encode_graph(constants, splat={"conv/batchnorm/gamma": (2.5, (32,))})


def test_mapping_covers_the_94_convolutions_once() -> None:
    prefixes = {key.rsplit(".conv.weight", 1)[0] for key in Inception2015().state_dict() if key.endswith(".conv.weight")}
    assert len(TF_SCOPES) == 94 and set(TF_SCOPES.values()) == prefixes
    assert TF_SCOPES["mixed_10/tower_1/mixed/conv_1"] == "Mixed_7c.branch3x3dbl_3b"
    assert TF_SCOPES["mixed_8/tower_1/conv_3"] == "Mixed_7a.branch7x7x3_4"


def test_reader_returns_every_constant_exactly(graph) -> None:
    constants, data = graph
    read = read_graph_def_constants(data)
    assert set(read) == set(constants) | {"conv/batchnorm/gamma"}
    for name, array in constants.items():
        assert read[name].dtype == np.float32 and np.array_equal(read[name], array), name
    assert np.array_equal(read["conv/batchnorm/gamma"], np.full(32, 2.5, dtype=np.float32))  # a one-value splat


def test_state_dict_transposes_kernels_and_softmax(graph) -> None:
    constants, data = graph
    state = state_dict_from_graph_def(data)
    assert set(state) == set(Inception2015().state_dict())
    hwio = constants["mixed_9/tower/mixed/conv/conv2d_params"]
    ours = state["Mixed_7b.branch3x3_2a.conv.weight"].numpy()
    for o, i, h, w in [(0, 0, 0, 0), (383, 5, 0, 2), (17, 200, 0, 1)]:
        assert ours[o, i, h, w] == hwio[h, w, i, o]
    for scope, prefix in TF_SCOPES.items():  # every kernel, against numpy's own transpose
        expected = np.ascontiguousarray(constants[f"{scope}/conv2d_params"].transpose(3, 2, 0, 1))
        assert np.array_equal(state[f"{prefix}.conv.weight"].numpy(), expected), scope
        assert np.array_equal(state[f"{prefix}.bn.bias"].numpy(), constants[f"{scope}/batchnorm/beta"]), scope
        assert np.array_equal(state[f"{prefix}.bn.running_mean"].numpy(), constants[f"{scope}/batchnorm/moving_mean"])
        assert state[f"{prefix}.bn.num_batches_tracked"].dtype == torch.int64
    assert np.array_equal(state["fc.weight"].numpy(), constants["softmax/weights"].T)
    assert np.array_equal(state["fc.bias"].numpy(), constants["softmax/biases"])
    assert np.array_equal(state["Mixed_5b.branch_pool.bn.running_var"].numpy(), constants["mixed/tower_2/conv/batchnorm/moving_variance"])
    assert torch.equal(state["Mixed_6e.branch1x1.bn.weight"], torch.ones(192))
    assert torch.equal(state["Conv2d_1a_3x3.bn.weight"], torch.ones(32))  # gamma 2.5 in the graph: unused
    Inception2015().load_state_dict(state)  # loads strictly


def test_pb_and_tgz_load_through_the_weights_module(graph, tmp_path: Path) -> None:
    _, data = graph
    pb = tmp_path / "classify_image_graph_def.pb"
    pb.write_bytes(data)
    tgz = tmp_path / "inception-2015-12-05.tgz"
    # Level 0 (stored): compressing 95 MB of random floats would dominate the test's run time.
    with tarfile.open(tgz, "w:gz", compresslevel=0) as archive:
        for other in ("LICENSE", "imagenet_synset_to_human_label_map.txt"):  # as in the real archive
            archive.addfile(tarfile.TarInfo(other), io.BytesIO(b""))
        info = tarfile.TarInfo("classify_image_graph_def.pb")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert read_graph_def_bytes(tgz) == data
    with pytest.raises(WeightsHashError, match=TF_GRAPH.sha256):
        load_weights(pb)  # not the real graph: refused without the opt-in
    from_pb = load_weights(pb, allow_unverified=True)
    from_tgz = load_weights(tgz, allow_unverified=True)
    assert from_pb.sha256 == from_tgz.sha256 == hashlib.sha256(data).hexdigest()
    assert not from_pb.verified
    assert torch.equal(from_pb.state_dict["Mixed_7c.branch_pool.conv.weight"], from_tgz.state_dict["Mixed_7c.branch_pool.conv.weight"])


def test_the_real_graph_hash_is_accepted_without_opt_in(graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score.network.weights as weights_module

    _, data = graph
    pb = tmp_path / "classify_image_graph_def.pb"
    pb.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    # Pretend our test graph is the genuine one: the check is by hash, and this hash must then pass.
    monkeypatch.setitem(weights_module.KNOWN_FILES, digest, weights_module.TF_GRAPH)
    assert load_weights(pb).verified


def test_damaged_files_raise_format_errors_naming_the_file(graph, tmp_path: Path) -> None:
    _, data = graph
    truncated = tmp_path / "truncated.pb"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFormatError, match="truncated.pb"):
        load_weights(truncated, allow_unverified=True)
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\x07" * 100)
    with pytest.raises(WeightsFormatError, match="garbage.pb"):
        load_weights(garbage, allow_unverified=True)
    empty_tgz = tmp_path / "other.tgz"
    with tarfile.open(empty_tgz, "w:gz") as archive:
        info = tarfile.TarInfo("README")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(WeightsFormatError, match="holds no classify_image_graph_def.pb"):
        load_weights(empty_tgz, allow_unverified=True)


def test_integer_and_string_constants_are_read_in_their_own_types() -> None:
    def add_nodes(graph) -> None:
        node = graph.node.add(name="pool_3/_reshape/shape", op="Const")
        node.attr["value"].tensor.dtype = 3  # DT_INT32; -1 travels as a 10-byte varint
        node.attr["value"].tensor.tensor_shape.dim.add(size=2)
        node.attr["value"].tensor.int_val.extend([-1, 2048])
        node = graph.node.add(name="big", op="Const")
        node.attr["value"].tensor.dtype = 9  # DT_INT64
        node.attr["value"].tensor.int64_val.append(-(2**40))
        node = graph.node.add(name="label", op="Const")
        node.attr["value"].tensor.dtype = 7  # DT_STRING: never a weight
        node.attr["value"].tensor.string_val.append(b"tench")
        graph.node.add(name="not_a_const", op="Identity").attr["value"].tensor.dtype = 1

    read = read_graph_def_constants(encode_graph({}, extra=add_nodes))
    assert set(read) == {"pool_3/_reshape/shape", "big"}
    assert read["pool_3/_reshape/shape"].dtype == np.int32 and read["pool_3/_reshape/shape"].tolist() == [-1, 2048]
    assert read["big"].dtype == np.int64 and read["big"].shape == () and int(read["big"]) == -(2**40)


def test_graph_missing_a_convolution_names_the_tensor() -> None:
    constants = {"softmax/weights": np.zeros((2048, 1008), np.float32), "softmax/biases": np.zeros(1008, np.float32)}
    with pytest.raises(WeightsFormatError, match="conv/conv2d_params"):
        state_dict_from_graph_def(encode_graph(constants))


def test_damaged_tgz_names_the_file(graph, tmp_path: Path) -> None:
    _, data = graph
    small = data[:1_000_000]  # the reader never gets to parse it: the archive itself is damaged
    tgz = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz", compresslevel=1) as archive:
        info = tarfile.TarInfo("classify_image_graph_def.pb")
        info.size = len(small)
        archive.addfile(info, io.BytesIO(small))
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(WeightsFormatError, match="cut.tgz"):
        read_graph_def_bytes(cut)
