"""Checkpoints that load no code: tensors, numbers, strings and plain containers, read with
``torch.load(weights_only=True)`` and written atomically (temporary file, fsync, rename), so that a
kill during a save leaves the previous checkpoint as it was.

A checkpoint is a file that may have been handed to the user (or may lie in a shared runs folder):
torch's full unpickler would run whatever code its pickle names. The restricted unpickler refuses any
class outside torch's allow-list, so a crafted file fails with :class:`CheckpointError` before any of it
runs. Checkpoints of versions before 0.2 pickled numpy's RNG state and are refused the same way, with a
message that says so.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inception_score.atomic import write_atomic

from .errors import ReferenceGanError

FORMAT = 2  # 1: versions before 0.2 (numpy objects in the pickle, loadable only with code execution)


class CheckpointError(ReferenceGanError):
    """A checkpoint that cannot be loaded safely: not a checkpoint, damaged, or written by an old version."""


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` (tensors and plain containers only) to ``path`` atomically, never through a link
    (:func:`inception_score.atomic.write_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda handle: torch.save({**state, "format": FORMAT}, handle))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved at ``path``, read without running any code from the file."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as error:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain containers "
            f"({_first_line(error)}). It is damaged, written by an inception-score older than 0.2 (whose "
            "checkpoints pickled numpy objects: start that run afresh), or crafted to run code; nothing in it "
            "was executed") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reference-gan checkpoint of format {FORMAT} "
                              "(written by another program or version): start the run afresh")
    return state


def saved_config(state: dict[str, Any], path: Path, known: Collection[str]) -> dict[str, Any]:
    """The configuration a checkpoint was trained with, each key one that this version's ``known`` fields
    name (a key it does not know: the checkpoint comes from another version, whose model may differ)."""
    config = state.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds no training configuration ('config'; it holds {_keys(state)}): "
                              "not a checkpoint of reference-gan train")
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise CheckpointError(
            f"{path} holds a configuration with {len(unknown)} key{'s' * (len(unknown) > 1)} this version does not "
            f"know ({', '.join(map(str, unknown[:5]))}{', ...' if len(unknown) > 5 else ''}): it was written by "
            "another version of reference-gan; use that version, or start the run afresh")
    return config


def restore_module(module: torch.nn.Module, state: dict[str, Any], key: str, path: Path, what: str,
                   expected: str) -> None:
    """``module.load_state_dict(state[key])``, once the checkpoint is known to hold it with the names and
    shapes of ``module`` (``what``: "generator"; ``expected``: where the module's shape comes from)."""
    saved = state.get(key)
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds no {what} ('{key}'; it holds {_keys(state)}): not a complete "
                              "checkpoint of reference-gan train")
    wanted = module.state_dict()
    differ = [(name, tuple(getattr(saved[name], "shape", ())), tuple(tensor.shape))
              for name, tensor in wanted.items()
              if name in saved and tuple(getattr(saved[name], "shape", ())) != tuple(tensor.shape)]
    missing = [name for name in wanted if name not in saved]
    extra = [name for name in saved if name not in wanted]
    if differ or missing or extra:
        if differ:
            name, there, here = differ[0]
            detail = f"{name} is {there} there, {here} expected"
        elif missing:
            detail = f"it lacks {missing[0]}"
        else:
            detail = f"it has {extra[0]}, which is not expected"
        others = len(differ) + len(missing) + len(extra) - 1
        raise CheckpointError(f"{path} holds a {what} of another shape than {expected}: {detail}"
                              f"{f' ({others} more tensors differ)' if others else ''}")
    module.load_state_dict(saved)


def _keys(state: dict[str, Any]) -> str:
    names = sorted(str(key) for key in state)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "nothing"


def _first_line(error: Exception) -> str:
    """torch's message without its advice to load with ``weights_only=False`` (that would run the code)."""
    text = str(error).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and "weights_only" not in line and not line.lower().startswith(("(1)", "(2)", "check the")):
            return line[:200]
    return type(error).__name__


def rng_states() -> dict[str, torch.Tensor]:
    """The torch, numpy and python RNG states as tensors (the numpy and python states hold only integers
    and, for numpy, a cached Gaussian: all exact in int64 / float64)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    assert name == "MT19937"
    version, python_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_meta": torch.tensor([position, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor(cached, dtype=torch.float64),
        "python": torch.tensor(python_state, dtype=torch.int64),
        "python_version": torch.tensor(version),
        "python_gauss": torch.tensor(float("nan") if gauss is None else gauss, dtype=torch.float64),
    }


def set_rng_states(states: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"].cpu())
    position, has_gauss = (int(v) for v in states["numpy_meta"])
    np.random.set_state(("MT19937", states["numpy_keys"].cpu().numpy().astype(np.uint32), position, has_gauss,
                         float(states["numpy_gauss"])))
    gauss = float(states["python_gauss"])
    random.setstate((int(states["python_version"]), tuple(int(v) for v in states["python"]),
                     None if gauss != gauss else gauss))
