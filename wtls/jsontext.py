"""JSON text that is always valid UTF-8, for ``--json`` output and the server's messages.

File names on Linux are bytes; wtls decodes them as UTF-8 with surrogate escapes (a byte that
is not UTF-8, like 0xFF, becomes the lone surrogate U+DCFF) so that git paths round-trip inside
Python. A lone surrogate cannot be encoded as UTF-8, and ``json.dumps`` would write it as the
escape ``\\udcff``, which strict JSON parsers (RFC 8259 §8.2, I-JSON) reject. :func:`dumps`
writes each such character as U+FFFD REPLACEMENT CHARACTER instead: the output is well-formed
UTF-8 and I-JSON; a name that is not UTF-8 shows the way editors and terminals show it (with
``�`` for each undecodable byte). Valid UTF-8 names, including any non-ASCII text, are written
as they are (not ``\\u``-escaped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

#: A surrogate code point: in a Python ``str`` made by decoding, always a lone one (an
#: undecodable byte), since a valid pair decodes to one code point.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with every surrogate (an undecodable byte) replaced by U+FFFD."""
    return _SURROGATE_RE.sub(REPLACEMENT, text)


def dumps(
    obj: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> str:
    """``json.dumps(obj)`` as text that encodes to valid UTF-8 (see the module docstring)."""
    return clean_text(json.dumps(obj, indent=indent, default=default, ensure_ascii=False))
