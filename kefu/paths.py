"""The project's directories, computed in one place.

KEFU_HOME overrides the root (a deployment that keeps policy/, models/ and var/ elsewhere);
otherwise it is the checkout this package lives in.
"""

from __future__ import annotations

import os
from pathlib import Path


def _root() -> Path:
    home = os.environ.get("KEFU_HOME")
    return Path(home).resolve() if home else Path(__file__).resolve().parents[1]


ROOT = _root()
POLICY_DIR = ROOT / "policy"
DATA_DIR = ROOT / "data"
MODELS_DIR = ROOT / "models"
VAR_DIR = ROOT / "var"
REPORTS_DIR = ROOT / "reports"
