"""Table 3 of the paper (the ablation), regenerated: ``reference-gan ablation`` under another name.

    python benchmarks/ablation.py --preset smoke --data-dir ../shared/data/cifar10-partial --weights W.pth
    python benchmarks/ablation.py --preset paper --data-dir cifar-10-batches-py --device cuda [--only our-methods]

Writes ``benchmarks/results/ablation-<preset>.md`` / ``.csv`` / ``.png``; see ``--help``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR  # noqa: E402

from reference_gan.cli import ablation_command  # noqa: E402

if __name__ == "__main__":  # the tables go beside this script's other results, wherever it is run from
    ablation_command(prog_name="benchmarks/ablation.py", default_map={"results_dir": str(RESULTS_DIR)})
