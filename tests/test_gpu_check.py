"""benchmarks/gpu_check.sh, dry-run on the CPU with tiny sizes: every step runs, the report has every
section with figures in it, and gpu-summary.json has every headline key. The real run needs a GPU (see
the script's header)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
SECTIONS = ("## Machine", "## Tests", "## CUDA exact against CPU exact", "## Throughput from memory", "## Where the time goes",
            "## Throughput from PNG files", "## Throughput from JPEG files",
            "## End to end, one .npz", "## Reference GAN training", "## Provenance")
SUMMARY_KEYS = ("gpu", "date", "fast_vs_torch_fidelity", "fast_is_rel_deviation", "exact_vs_torch_fidelity",
                "exact_is_rel_deviation_vs_ieee", "files_vs_memory", "end_to_end_50k_s", "trainer_ms_per_step")
NULL_ON_A_CPU = {"gpu"}  # the one figure a CPU dry run cannot measure


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the GPU check is a bash script")
def test_gpu_check_dry_runs_on_cpu_and_reports_every_section(
    tmp_path: Path, shared_dir: Path, cifar10_partial_dir: Path, genuine_weights_file: Path
) -> None:
    pytest.importorskip("torch_fidelity", reason="the throughput step compares with torch-fidelity")
    out = tmp_path / "out"
    env = {**os.environ, "DEVICE": "cpu", "SMALL": "1", "PYTHON": sys.executable, "OUT": str(out),
           "PREP": str(tmp_path / "nothing-prepared"), "WEIGHTS": str(genuine_weights_file),
           "INCEPTION_SCORE_SHARED": str(shared_dir), "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = (out / "gpu-check.log").read_text() if (out / "gpu-check.log").is_file() else done.stderr
    assert done.returncode == 0, log[-4000:]

    markdown = (out / "gpu-check.md").read_text()
    positions = [markdown.find(section) for section in SECTIONS]
    assert -1 not in positions and positions == sorted(positions), markdown
    assert "Not measured" not in markdown, log[-4000:]
    assert "| ours exact img/s | ours fast img/s | ours fast-bf16 img/s | ours fast-tf32 img/s | torch-fidelity img/s |" in markdown
    assert "| fast-tf32 |" in markdown  # the fast choices, each with its deviation from exact
    assert "| cpu exact (float32) | 0 |" in markdown  # CPU against CPU: the same computation, no difference
    assert "fast hours" in markdown and "passed" in markdown.split("## Tests")[1].split("##")[0]
    assert (out / "gpu-check.json").is_file()
    assert "PNG files (32x32)" in markdown and "JPEG files (64x64, quality 90)" in markdown  # the dry run's sizes
    assert "fast ms / step" in markdown and "plain ms / step" in markdown and "on 8 GPUs" in markdown

    summary = json.loads((out / "gpu-summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary), set(SUMMARY_KEYS) - set(summary)
    assert [key for key in SUMMARY_KEYS if summary[key] is None] == sorted(NULL_ON_A_CPU), summary
    assert set(summary["end_to_end_50k_s"]) == {"ours", "torch_fidelity"}
    assert all(seconds > 0 for seconds in summary["end_to_end_50k_s"].values()), summary
    assert summary["end_to_end_images"] == 4  # the dry run's count, said beside the timings
    assert summary["exact_is_rel_deviation_vs_ieee"] == 0  # CPU against CPU: the same computation
    assert summary["files_vs_memory"]["format"] == "png" and summary["files_vs_memory"]["num_workers"] == 2
    assert set(summary["trainer_ms_per_step"]) == set(summary["trainer_ms_per_step_plain"]) == {"minus-mbf"}
    assert all(ms > 0 for ms in summary["trainer_ms_per_step"].values())
    assert len(list(out.iterdir())) <= 8  # a device call brings back at most 8 files from $OUT
