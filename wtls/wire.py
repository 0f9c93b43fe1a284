"""One converter from wtls's frozen models to the protocol's JSON (camelCase keys).

Every result the CLI prints with ``--json`` and the server returns from a command is a frozen
dataclass; :func:`to_wire` turns it into JSON-ready data with one set of rules (cattrs, which
pygls already brings): field ``base_commit`` becomes key ``baseCommit``, a ``Path`` its string,
a tuple a list, a nested result its own object. A field whose wire form differs says so in
its own metadata, made by :func:`wire`: another key (``from`` is a Python keyword), left
out when it has its default value, or not on the wire at all. Context-dependent fields (which
worktree is "this") are computed into small payload classes by one function each, never
assembled by hand as dicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

_converter = cattrs.Converter()


def camel(name: str) -> str:
    """``would_back_up`` → ``wouldBackUp``: the protocol's spelling of a field name."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _is_tuple(cls: Any) -> bool:
    return cls is tuple or get_origin(cls) is tuple


def _is_mapping(cls: Any) -> bool:
    origin = get_origin(cls) or cls
    return isinstance(origin, type) and issubclass(origin, Mapping)


_WIRE = "wtls.wire"


def wire(*, key: str | None = None, omit_default: bool = False, internal: bool = False) -> Any:
    """Field metadata with a wire rule, for ``field(metadata=wire(...))``: sent under ``key``
    instead of its camelCase name, left out while it equals its default (``omit_default``), or
    never sent (``internal``)."""
    return {_WIRE: {"key": key, "omit_default": omit_default, "internal": internal}}


def wire_key(f: dataclasses.Field[Any]) -> str | None:
    """The JSON key of dataclass field ``f`` (None: it is not sent)."""
    rule = f.metadata.get(_WIRE, {})
    if rule.get("internal"):
        return None
    return rule.get("key") or camel(f.name)


def wire_keys(cls: type[Any]) -> list[str]:
    """Every key the wire form of dataclass ``cls`` can have (for drift tests and docs)."""
    return [k for k in (wire_key(f) for f in dataclasses.fields(cls)) if k is not None]


def _dataclass_hook(cls: type[Any]) -> Any:
    overrides = {}
    for f in dataclasses.fields(cls):
        key = wire_key(f)
        rule = f.metadata.get(_WIRE, {})
        overrides[f.name] = (
            override(omit=True)
            if key is None
            else override(rename=key, omit_if_default=bool(rule.get("omit_default")))
        )
    return make_dict_unstructure_fn(
        cls,
        _converter,
        _cattrs_include_init_false=True,
        **overrides,  # type: ignore[arg-type]
    )


_converter.register_unstructure_hook(Path, str)
_converter.register_unstructure_hook_func(
    _is_tuple, lambda value: [_converter.unstructure(item) for item in value]
)
_converter.register_unstructure_hook_func(
    _is_mapping, lambda value: {k: _converter.unstructure(v) for k, v in value.items()}
)
_converter.register_unstructure_hook_factory(dataclasses.is_dataclass, _dataclass_hook)


def to_wire(obj: Any) -> Any:
    """``obj`` (a frozen result, or anything JSON-like) as the protocol's JSON data."""
    return _converter.unstructure(obj)


def wire_object(obj: Any) -> dict[str, Any]:
    """A frozen result as the protocol's JSON object."""
    data = to_wire(obj)
    assert isinstance(data, dict), type(obj)
    return data
