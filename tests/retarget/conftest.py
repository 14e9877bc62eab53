"""The retarget tests run without bpy and torch. Their shared helpers (synthetic rigs and motions) live in
``retarget_rigs.py``; pytest runs in importlib mode, which puts no test folder on ``sys.path``, so the module is
registered here under its own name and the test modules import it as ``retarget_rigs``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "retarget_rigs" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("retarget_rigs", Path(__file__).with_name("retarget_rigs.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["retarget_rigs"] = _module
    _spec.loader.exec_module(_module)
