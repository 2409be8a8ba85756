"""A Lightning program that scores each epoch's images with InceptionScoreMetric on 2 CPU processes
(DDP over Gloo), run by tests/test_lightning.py as ``python tests/lightning_program.py OUT``.

Lightning's ``strategy="ddp"`` starts the second process by running this file again, so it is a
script, not a test module. Each epoch's images stand in for the samples of a generator being
trained (different images every epoch); the scorer is the fast stand-in of the distributed tests
(tests/distributed_workers.py). Each process writes what it logged and which data set indices its
sampler gave it to ``OUT/rank-<r>.json``.

``python tests/lightning_program.py OUT bf16-mixed WEIGHTS`` runs the same program under
``Trainer(precision="bf16-mixed")`` (CPU bfloat16 autocast around every step) with the real network
and the weights file ``WEIGHTS`` instead of the stand-in: the stand-in computes in float64, which
autocast leaves alone, so only the network's own preprocessing and layers can show what autocast does.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

import distributed_workers as workers
from inception_score import InceptionScorer
from inception_score.torchmetrics_adapter import InceptionScoreMetric

NUM_IMAGES = 31  # not a multiple of the 2 processes: the sampler pads rank 1 with image 0 again
EPOCHS = 2


def epoch_images(epoch: int):
    """``(NUM_IMAGES, 16, 16, 3)`` uint8, different each epoch."""
    return workers.images(NUM_IMAGES, seed=100 + epoch)


class Scored(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.inception = InceptionScoreMetric(splits=10, num_images=NUM_IMAGES, scorer=workers.PixelProjection())

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[:, None]).square().mean()

    def validation_step(self, indices: torch.Tensor, batch_idx: int) -> None:
        images = epoch_images(self.current_epoch)[indices.numpy()]  # this epoch's samples
        self.inception.update(images)
        self.log("is", self.inception)  # computed, synced and reset by Lightning at the epoch's end

    def on_validation_epoch_end(self) -> None:
        # The std and whether the weights were verified, the same on every process.
        self.log_dict(self.inception.scalars("inception"), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.arange(8, dtype=torch.float32), batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(torch.arange(NUM_IMAGES), batch_size=4)  # Lightning adds a DistributedSampler


class Recorded(Scored):
    """Which data set indices this process's sampler gave it, each epoch."""

    def __init__(self, weights: str | None = None) -> None:
        if weights is None:
            super().__init__()
        else:  # the real network: the stand-in's metric is replaced before any use (its warning with it)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                super().__init__()
            scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, progress=False)
            self.inception = InceptionScoreMetric(splits=10, num_images=NUM_IMAGES, scorer=scorer)
        self.indices: dict[int, list[int]] = {}

    def validation_step(self, indices: torch.Tensor, batch_idx: int) -> None:
        super().validation_step(indices, batch_idx)
        self.indices.setdefault(self.current_epoch, []).extend(indices.tolist())


class Record(L.Callback):
    """What Lightning logged at each validation epoch's end, on this process."""

    def __init__(self) -> None:
        self.logged: dict[int, dict[str, float]] = {}
        self.dtypes: set[str] = set()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        metrics = {name: trainer.callback_metrics[name] for name in
                   ("is", "inception", "inception_std", "inception_weights_verified")}
        self.dtypes |= {str(value.dtype) for value in metrics.values()}
        self.logged[trainer.current_epoch] = {name: float(value) for name, value in metrics.items()}


def main(out: Path, precision: str = "32-true", weights: str | None = None) -> None:
    torch.set_num_threads(1)
    module, record = Recorded(weights), Record()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=EPOCHS, callbacks=[record],
                        num_sanity_val_steps=0,  # a few batches are not the whole set: nothing to score
                        precision=precision,  # "32-true", or "bf16-mixed": CPU bfloat16 autocast around each step
                        default_root_dir=out, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module)
    (out / f"rank-{trainer.global_rank}.json").write_text(json.dumps({
        "world": trainer.world_size, "logged": record.logged, "dtypes": sorted(record.dtypes),
        "indices": module.indices, "weights_verified": module.inception.weights_verified,
        "precision": trainer.precision}))
    # The process group taken down here, not by the interpreter's exit: left to it, Gloo's threads were once
    # torn down under a running thread ("terminate called without an active exception", SIGABRT) after
    # the results above were written.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:])
