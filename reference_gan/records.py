"""What every result file (the paper tables, the benchmarks) records beside its numbers: the command
line, the machine (CPU model and flags, or the GPU), the commit and the date. Where the files go is the
caller's to say (``--results``)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

def cpu_flags() -> str:
    """The CPU's vector and matrix extensions (what decides float32 and bfloat16 speed): AVX2, AVX-512
    and AMX flags from /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as handle:
            line = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    wanted = [f for f in line.split(":", 1)[-1].split() if f in ("avx2", "fma") or f.startswith(("avx512", "amx"))]
    return " ".join(sorted(wanted)) or "unknown"


def provenance(device: str = "cpu") -> dict[str, str]:
    """Command line, machine, commit and UTC date of this process: what every result file records
    beside its numbers."""
    if device.startswith("cuda") and torch.cuda.is_available():
        hardware = torch.cuda.get_device_name(torch.device(device))
    else:
        hardware = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as handle:
                hardware = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), hardware)
        except OSError:
            pass
        hardware = f"{hardware}, {os.cpu_count()} cores, flags: {cpu_flags()}"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": f"{hardware}; {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
                   f"Python {platform.python_version()}",
        "commit": commit,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def provenance_markdown(info: dict[str, str]) -> str:
    """``info`` as a markdown list, one ``- key: `value` `` line each."""
    return "\n".join(f"- {key}: `{value}`" for key, value in info.items()) + "\n"
