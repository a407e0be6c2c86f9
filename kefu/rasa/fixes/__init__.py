"""kefu's runtime fixes for Rasa 3.6.21: a guarded set, one module per fix.

Selected by KEFU_RUNTIME_FIXES: `all` (default), `none`, or a comma list of names.
Installed by kefu's Rasa launcher (`python -m kefu.rasa`), never as a side effect of a
component. Each fix checks the Rasa version and the fingerprint of every original it
replaces and refuses loudly if either differs; each can be uninstalled.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from kefu.rasa.fixes import (
    action_schema,
    concrete_predict,
    dialogue_states,
    endpoint_sessions,
    event_types,
    graph_runner,
    sparse_join,
)
from kefu.rasa.fixes.base import SUPPORTED_RASA, RuntimeFix, RuntimeFixError, rasa_version

ENV = "KEFU_RUNTIME_FIXES"
FIXES: Dict[str, RuntimeFix] = {
    fix.name: fix
    for fix in (
        action_schema.FIX,
        event_types.FIX,
        graph_runner.FIX,
        dialogue_states.FIX,
        concrete_predict.FIX,
        endpoint_sessions.FIX,
        sparse_join.FIX,
    )
}

__all__ = [
    "ENV",
    "FIXES",
    "SUPPORTED_RASA",
    "RuntimeFix",
    "RuntimeFixError",
    "install",
    "rasa_version",
    "selected",
    "status",
    "uninstall",
]


def selected(spec: Optional[str] = None) -> List[str]:
    """The fix names a KEFU_RUNTIME_FIXES value selects; unknown names are an error."""
    raw = (os.environ.get(ENV, "all") if spec is None else spec).strip()
    if raw in ("", "all"):
        return list(FIXES)
    if raw == "none":
        return []
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in FIXES]
    if unknown:
        raise RuntimeFixError(
            f"{ENV}: unknown fix {', '.join(unknown)}; known: all, none, {', '.join(FIXES)}"
        )
    return [name for name in FIXES if name in names]


def install(spec: Optional[str] = None) -> List[str]:
    """Installs the selected fixes (all or nothing); returns their names."""
    names = selected(spec)
    done: List[RuntimeFix] = []
    try:
        for name in names:
            FIXES[name].install()
            done.append(FIXES[name])
    except Exception:
        for fix in reversed(done):
            fix.uninstall()
        raise
    return names


def uninstall() -> None:
    for fix in reversed(list(FIXES.values())):
        fix.uninstall()


def status() -> List[Dict[str, object]]:
    """One entry per fix: whether it is installed here and verified against this Rasa."""
    out: List[Dict[str, object]] = []
    for fix in FIXES.values():
        problems = [] if fix.installed else fix.problems()
        out.append(
            {
                "name": fix.name,
                "installed": fix.installed,
                "verified": not problems,
                "summary": fix.summary,
                **({"problems": problems} if problems else {}),
            }
        )
    return out
