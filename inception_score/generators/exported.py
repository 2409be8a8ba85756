"""Generators saved with ``torch.export`` (``.pt2`` files), the successor of TorchScript, which torch
2.9 on deprecates: ``torch.export.save(torch.export.export(G.eval(), (z,), dynamic_shapes=({0:
torch.export.Dim("batch")},)), "G.pt2")``.

Loading such a file (``torch.export.load``) unpickles its weights and constants with Python's pickle
(``weights_only=False`` inside torch), so it can run code, as a TorchScript file can: load only a file
the user named as a generator and trusts (:func:`~inception_score.generator.load_generator_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import InputError

# Where the training flag is among the arguments of the batch norm and dropout ops of an exported graph:
# aten.batch_norm / _native_batch_norm_legit(_functional)(input, weight, bias, mean, var, training, ...),
# aten.dropout(input, p, train).
_TRAINING_ARGUMENT = {"batch_norm": 5, "_native_batch_norm_legit": 5, "_native_batch_norm_legit_functional": 5,
                      "dropout": 2, "feature_dropout": 2, "alpha_dropout": 2}


def exported_in_training_mode(program: Any) -> bool:
    """Whether an ``ExportedProgram``'s graph normalises by batch statistics or drops out: the mode the
    module was in when it was exported, fixed in the graph (its ``module()`` always says ``training``)."""
    for node in program.graph.nodes:
        name = str(node.target).removeprefix("aten.").split(".")[0]
        position = _TRAINING_ARGUMENT.get(name)
        if position is not None and len(node.args) > position and node.args[position] is True:
            return True
    return False


class ExportedGenerator:
    """A ``.pt2`` generator as a callable for :func:`~inception_score.generator.score_generator`: z (and
    labels) in, images out, on ``device``. ``training``: whether it was exported in training mode."""

    def __init__(self, path: Path, device: torch.device) -> None:
        try:
            program = torch.export.load(str(path))
        except Exception as error:  # noqa: BLE001 - torch raises many types for a file that is not a program
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise InputError(f"{path} is not a torch.export program ({first}): save the generator with "
                             "torch.export.save(torch.export.export(G.eval(), (z,)), 'G.pt2')") from None
        self.path = path
        self.training = exported_in_training_mode(program)
        self.module = program.module().to(device)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        try:
            return self.module(*inputs)
        except (RuntimeError, AssertionError, ValueError) as error:
            text = str(error)
            if "batch" in text.lower() or "shape" in text.lower() or "guard" in text.lower():
                raise InputError(
                    f"{self.path} does not take a batch of {inputs[0].shape[0]} z ({text.splitlines()[0][:200]}): export "
                    "it with a batch dimension of any size, torch.export.export(G.eval(), (z,), "
                    "dynamic_shapes=({0: torch.export.Dim('batch')},))") from None
            raise
