"""YAML documents that remember the line of every key, for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple, Union

import yaml

PathKey = Tuple[Union[str, int], ...]


class PolicyError(ValueError):
    """A policy file that cannot be used, with where and why."""

    def __init__(self, file: Path | str, line: int | None, key: str, problem: str):
        self.file, self.line, self.key, self.problem = str(file), line, key, problem
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass
class Source:
    """A parsed YAML file plus the line number (1-based) of every key path."""

    path: Path
    data: Any
    lines: Dict[PathKey, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Source:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise PolicyError(path, None, "", f"cannot read: {e.strerror}") from e
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise PolicyError(path, line, "", f"invalid YAML: {e}") from e
        source = cls(path, data)
        if node is not None:
            for key, line in _walk(node, ()):
                source.lines[key] = line
        return source

    def line(self, key: PathKey) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def error(self, key: PathKey, problem: str) -> PolicyError:
        return PolicyError(self.path, self.line(key), dotted(key), problem)


def dotted(key: PathKey) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _walk(node: yaml.Node, key: PathKey) -> Iterator[Tuple[PathKey, int]]:
    yield key, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k_node, v_node in node.value:
            child = key + (k_node.value,)
            yield child, k_node.start_mark.line + 1
            for sub in _walk(v_node, child):
                if sub[0] != child:
                    yield sub
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _walk(item, key + (i,))
