"""`inception-score --help` and `--version` answer without loading torch (it takes seconds to import)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_do_not_import_torch(option: str) -> None:
    probe = ("import sys\n"
             "from click.testing import CliRunner\n"
             "from inception_score.cli.main import main\n"
             f"outcome = CliRunner().invoke(main, [{option!r}])\n"
             "assert outcome.exit_code == 0, outcome.output\n"
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
