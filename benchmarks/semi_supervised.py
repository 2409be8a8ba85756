"""The paper's semi-supervised results (Table 1: MNIST, Table 2: CIFAR-10, SVHN), regenerated:
``reference-gan semi-supervised`` under another name.

    python benchmarks/semi_supervised.py --dataset mnist --data-dir ../shared/data/mnist --labels 100 --seeds 1
    python benchmarks/semi_supervised.py --dataset cifar10 --data-dir cifar-10-batches-py --device cuda --seeds 1,2,3
    python benchmarks/semi_supervised.py --dataset mnist --collect-only

Writes ``benchmarks/results/semi-supervised-<dataset>.md`` (+ learning curves ``.png``); see ``--help``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR  # noqa: E402

from reference_gan.cli import semi_supervised_command  # noqa: E402

if __name__ == "__main__":  # the tables go beside this script's other results, wherever it is run from
    semi_supervised_command(prog_name="benchmarks/semi_supervised.py", default_map={"results_dir": str(RESULTS_DIR)})
