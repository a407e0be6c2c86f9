"""The flat XML documents WeChat and WeCom exchange: read safely, written with CDATA."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Dict, Mapping, Union

# No document type, no entities: what WeChat sends never has them, and refusing them
# keeps entity expansion (billion laughs) and external entities out entirely.
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_BYTES = 64 * 1024


class MalformedMessage(Exception):
    """A body that is not WeChat's XML (400)."""


def parse_xml(raw: Union[bytes, str]) -> Dict[str, str]:
    """`<xml><Tag>value</Tag>...</xml>` as {Tag: value} (direct children only)."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if not data.strip():
        raise MalformedMessage("empty body")
    if len(data) > MAX_BYTES or _FORBIDDEN.search(data):
        raise MalformedMessage("not a WeChat message")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise MalformedMessage(f"not XML: {e}") from None
    if root.tag != "xml":
        raise MalformedMessage("the root element is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: Mapping[str, Union[str, int]]) -> str:
    """Strings in CDATA, numbers bare, in the given order (WeChat's own layout)."""
    parts = []
    for tag, value in fields.items():
        text = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{tag}>{text}</{tag}>")
    return "<xml>" + "".join(parts) + "</xml>"
