"""What every benchmark result records beside its numbers: command, machine, commit, date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_description(device: str = "cpu") -> str:
    """CPU model and core count, or the GPU name, plus the torch version."""
    if device.startswith("cuda") and torch.cuda.is_available():
        hardware = torch.cuda.get_device_name(torch.device(device))
    else:
        model = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        hardware = f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{hardware}; torch {torch.__version__}; Python {platform.python_version()}"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(device: str = "cpu") -> dict[str, str]:
    """Command line, machine, commit and UTC date of this run."""
    return {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": machine_description(device),
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_markdown(device: str = "cpu") -> str:
    info = provenance(device)
    return "\n".join(f"- {key}: `{value}`" for key, value in info.items()) + "\n"
