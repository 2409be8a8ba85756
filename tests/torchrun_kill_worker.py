"""What each process runs under torchrun in tests/test_distributed_cli.py's kill test: the command
itself, with the stand-in network of distributed_workers (no weights to load), where process 1 is
killed with SIGKILL by its first batch, as ``kill -9`` or the kernel's out-of-memory killer would.

    torchrun --nproc-per-node 2 tests/torchrun_kill_worker.py IMAGES.npy
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inception_score.engine.runner as scorer_module  # noqa: E402
from distributed_workers import PixelProjection  # noqa: E402
from inception_score.cli.main import main  # noqa: E402


class DiesOnRankOne(PixelProjection):
    def logits(self, batch):
        if os.environ["RANK"] == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.5)  # process 0 is still scoring when the launcher reacts
        return super().logits(batch)


if __name__ == "__main__":
    scorer_module.InceptionScorer = lambda *args, **kwargs: DiesOnRankOne()
    main([sys.argv[1], "--splits", "2", "--batch-size", "2", "--device", "cpu", "--quiet"])
