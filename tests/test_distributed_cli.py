"""``torchrun ... -m inception_score``: several processes score one folder. Rank 0 alone prints; the
score equals one process's to float32 rounding; a corrupt file read by another rank ends every rank
with status 2 and its name. Real network (genuine convolutions + a seeded random fc: not Inception
Scores), one thread per process, batches of 3: each process count cuts the 7 images into other
batches (1 process: 3, 3, 1; 2: 3, 1 | 3; 3: 3 | 2 | 2), as a user's run would."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_score.engine.distributed import statistics_bytes


# Other batches mean other matrix shapes, so the math library may order each float32 sum of the
# network differently: an image's logits move by float32 rounding (measured up to 1.5e-5 of a logit,
# logits up to ~20), and the mean, an average over the images of a smooth function of them, by far
# less than 1e-6 of itself (these 7 images, batches as above: up to 1.9e-7 on a Xeon with its AVX2
# kernels, 1.7e-8 with its AVX-512 ones; 37 and 64 images: benchmarks/results/batch-composition-
# rounding*.md). A split score averages over 3 or 4 images only (measured up to 4.8e-7), so it gets
# 1e-5. A lost or a doubled image moves a split score by 1e-2 or more and the mean by 6e-3 or more.
FLOAT32_LOGITS = 1e-6
FLOAT32_LOGITS_SPLIT = 1e-5


def write_folder(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(4)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"img-{index:02d}.png")
    return folder


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def command(folder: Path, weights: Path, *extra: str) -> list[str]:
    return ["-m", "inception_score", str(folder), "--weights", str(weights), "--allow-unverified-weights",
            "--splits", "2", "--batch-size", "3", "--device", "cpu", "--quiet", *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def launch_ranks(world: int, args: list[str]) -> list[subprocess.CompletedProcess]:
    """Start ``world`` processes with the variables torchrun sets (env:// rendezvous on localhost)."""
    port = free_port()
    processes = []
    for rank in range(world):
        env = {**environment(), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        processes.append(subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=240)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("images") / "images", 7)


@pytest.fixture(scope="module")
def one_process(folder: Path, genuine_weights_file: Path) -> dict:
    done = subprocess.run([sys.executable, *command(folder, genuine_weights_file, "--json")], env=environment(),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_print_one_json_equal_to_one_process(world: int, folder: Path, genuine_weights_file: Path,
                                                   one_process: dict, tmp_path: Path) -> None:
    output = tmp_path / "score.json"
    ranks = launch_ranks(world, command(folder, genuine_weights_file, "--json", "--output", str(output)))
    assert [r.returncode for r in ranks] == [0] * world, [r.stderr for r in ranks]
    assert all(r.stdout == "" for r in ranks[1:])  # only rank 0 prints
    document = json.loads(ranks[0].stdout)  # exactly one JSON document
    assert document["mean"] == pytest.approx(one_process["mean"], rel=FLOAT32_LOGITS)
    np.testing.assert_allclose(document["split_scores"], one_process["split_scores"], rtol=FLOAT32_LOGITS_SPLIT)
    assert document["processes"] == world and document["exchanged_bytes"] == statistics_bytes(2, 1008)
    assert json.loads(output.read_text())["mean"] == document["mean"]  # written once, by rank 0: the same number


def test_torchrun_prints_exactly_one_line(folder: Path, genuine_weights_file: Path, one_process: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3",
                           *command(folder, genuine_weights_file)], env=environment(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Inception Score: "), done.stdout
    printed = re.match(r"Inception Score: (\d+\.\d\d) ± (\d+\.\d\d) ", lines[0])
    assert printed, lines[0]
    # 2 decimals (within 0.005 of the number) of a mean within FLOAT32_LOGITS of one process's, and of a
    # std within max |d s_i| of it (2 split scores), i.e. within FLOAT32_LOGITS_SPLIT * (mean + std).
    mean, std = one_process["mean"], one_process["std"]
    assert abs(float(printed[1]) - mean) <= 0.005 + FLOAT32_LOGITS * mean + 1e-12, (printed[1], mean)
    assert abs(float(printed[2]) - std) <= 0.005 + FLOAT32_LOGITS_SPLIT * (mean + std) + 1e-12, (printed[2], std)


def test_a_corrupt_file_read_by_one_rank_ends_every_rank_with_status_2(genuine_weights_file: Path,
                                                                       tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "images", 6)
    (folder / "img-05.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # the last: rank 1's part
    begin = time.perf_counter()
    ranks = launch_ranks(2, command(folder, genuine_weights_file))
    assert time.perf_counter() - begin < 60
    assert [r.returncode for r in ranks] == [2, 2], [r.stderr for r in ranks]
    lines = ranks[0].stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: process 1 of 2 failed: ") and "img-05.png" in lines[0]
    assert "Traceback" not in ranks[0].stderr + ranks[1].stderr


def test_skip_invalid_checks_each_ranks_own_files_and_agrees(genuine_weights_file: Path, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "images", 7)
    (folder / "img-06.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # in rank 1's half
    args = command(folder, genuine_weights_file, "--json", "--skip-invalid")
    alone = subprocess.run([sys.executable, *args], env=environment(), capture_output=True, text=True, timeout=240)
    assert alone.returncode == 0, alone.stderr
    ranks = launch_ranks(2, args)
    assert [r.returncode for r in ranks] == [0, 0], [r.stderr for r in ranks]
    document, expected = json.loads(ranks[0].stdout), json.loads(alone.stdout)
    assert document["skipped_invalid"]["count"] == 1 and "img-06.png" in document["skipped_invalid"]["files"][0]
    assert document["num_images"] == 6
    assert document["mean"] == pytest.approx(expected["mean"], rel=FLOAT32_LOGITS)
    np.testing.assert_allclose(document["split_scores"], expected["split_scores"], rtol=FLOAT32_LOGITS_SPLIT)
    assert ranks[0].stderr.count("img-06.png") == 1 and "img-06.png" not in ranks[1].stderr  # said once


KILL_WORKER = Path(__file__).resolve().parent / "torchrun_kill_worker.py"


@pytest.mark.skipif(not hasattr(os, "killpg") or sys.platform == "darwin", reason="SIGKILL and torchrun on Linux")
def test_kill_9_of_one_process_under_torchrun_leaves_one_line_from_the_other(tmp_path: Path) -> None:
    """torchrun stops the surviving process with SIGTERM within a second of the other's death: the
    survivor says so in one line (or, when its collective broke first, that the other stopped answering),
    and torchrun's own report names the process killed by signal 9. Stand-in network: seconds, not minutes."""
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(5).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(KILL_WORKER), str(images)], env=environment(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and done.stdout == "", done.stderr  # torchrun's status when a process fails
    ours = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    terminated = ("Error: process 0 of 2 was stopped by SIGTERM: torchrun stops every process when one of them "
                  "fails (or when it is stopped itself); its report names the process that failed")
    assert len(ours) == 1, done.stderr
    assert ours[0] == terminated or "another process of the group stopped answering" in ours[0], done.stderr
    root_cause = done.stderr.split("Root Cause")[-1]
    assert "rank      : 1 (local_rank: 1)" in root_cause and "exitcode  : -9" in root_cause, done.stderr
    assert "inception_score/" not in "".join(line for line in done.stderr.splitlines() if 'File "' in line)
