"""One converter from wtls's frozen models to the protocol's JSON (camelCase keys).

Every result the CLI prints with ``--json`` and the server returns from a command is a frozen
dataclass; :func:`to_wire` turns it into JSON-ready data with one set of rules (cattrs, which
pygls already brings): field ``base_commit`` becomes key ``baseCommit``, a ``Path`` its string,
a tuple a list, a nested result its own object. A class whose wire form differs from its
fields says so in its own ``to_json``, on top of :func:`to_wire`.
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


def _dataclass_hook(cls: type[Any]) -> Any:
    renames = {f.name: override(rename=camel(f.name)) for f in dataclasses.fields(cls)}
    return make_dict_unstructure_fn(cls, _converter, **renames)  # type: ignore[arg-type]


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
