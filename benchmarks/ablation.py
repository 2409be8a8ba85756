"""Table 3 of the paper (the ablation), regenerated: ``reference-gan ablation`` under another name.

    python benchmarks/ablation.py --preset smoke --data-dir ../shared/data/cifar10-partial --weights W.pth
    python benchmarks/ablation.py --preset paper --data-dir cifar-10-batches-py --device cuda [--only our-methods]

Writes ``benchmarks/results/ablation-<preset>.md`` / ``.csv`` / ``.png``; see ``--help``.
"""

from reference_gan.cli import ablation_command

if __name__ == "__main__":
    ablation_command(prog_name="benchmarks/ablation.py")
