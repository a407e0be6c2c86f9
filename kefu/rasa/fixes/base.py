"""A runtime fix: named replacements of Rasa attributes, checked before they go in.

Each fix names the Rasa version it was written against and a fingerprint (the first 16
hex digits of the SHA-256 of the original's source) of every attribute it replaces. If
either differs, the fix refuses loudly (RuntimeFixError) instead of replacing code it was
never checked against. Every fix can be uninstalled: the original descriptor is kept.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

SUPPORTED_RASA = "3.6.21"


class RuntimeFixError(RuntimeError):
    """A fix that cannot be verified against the installed Rasa."""


def rasa_version() -> str:
    from rasa.version import __version__

    return str(__version__)


def fingerprint(obj: Any) -> str:
    source = inspect.getsource(obj)
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


@dataclass
class Patch:
    """One attribute of one Rasa class replaced by `replacement`."""

    target: str  # "module:Class"
    attribute: str
    replacement: Callable[..., Any]
    fingerprint: str
    original: Any = None  # the descriptor as found in the class's __dict__, while installed

    def owner(self) -> Any:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def current(self) -> Any:
        return getattr(self.owner(), self.attribute)

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        original = self.original
        if isinstance(original, (staticmethod, classmethod)):
            original = original.__func__
        return original(*args, **kwargs)


@dataclass
class RuntimeFix:
    name: str
    summary: str
    patches: List[Patch]
    on_install: Optional[Callable[[], None]] = None
    on_uninstall: Optional[Callable[[], None]] = None
    installed: bool = False
    _by_attribute: Dict[str, Patch] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_attribute = {patch.attribute: patch for patch in self.patches}

    def patch(self, attribute: str) -> Patch:
        return self._by_attribute[attribute]

    def problems(self) -> List[str]:
        """Why this fix may not go in: empty when the version and every original match."""
        version = rasa_version()
        if version != SUPPORTED_RASA:
            return [f"Rasa {version} installed; the fix was checked against {SUPPORTED_RASA}"]
        found = []
        for patch in self.patches:
            label = f"{patch.target}.{patch.attribute}"
            if self.installed:
                continue  # the originals are ours to compare only before replacing them
            try:
                actual = fingerprint(patch.current())
            except (ImportError, AttributeError, OSError, TypeError) as e:
                found.append(f"{label}: cannot read the original ({e})")
                continue
            if actual != patch.fingerprint:
                found.append(f"{label}: source fingerprint {actual}, expected {patch.fingerprint}")
        return found

    def verified(self) -> bool:
        return not self.problems()

    def install(self) -> None:
        if self.installed:
            return
        problems = self.problems()
        if problems:
            raise RuntimeFixError(f"runtime fix {self.name!r} refused: " + "; ".join(problems))
        for patch in self.patches:
            owner = patch.owner()
            patch.original = owner.__dict__[patch.attribute]
            replacement: Any = patch.replacement
            if isinstance(patch.original, staticmethod):
                replacement = staticmethod(replacement)
            setattr(owner, patch.attribute, replacement)
        self.installed = True
        if self.on_install is not None:
            self.on_install()

    def uninstall(self) -> None:
        if not self.installed:
            return
        if self.on_uninstall is not None:
            self.on_uninstall()
        for patch in self.patches:
            setattr(patch.owner(), patch.attribute, patch.original)
            patch.original = None
        self.installed = False
