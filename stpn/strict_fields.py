"""Strict reading of config mappings: the one ``from_dict`` of every config dataclass.

YAML sections and JSON files become keyword arguments of a dataclass (or of a plain factory
function) only after every key is checked against the target's parameters and every value
against the parameter's annotation. A typo (``test_sise``), a wrong type (``lr: "abc"``,
``max_iters: "10"``, a list where a mapping is expected) or a missing required key ends in one
``ValueError`` line naming the file, the key and the expected type.

Conversions: a list becomes a tuple for ``tuple[...]`` parameters (JSON and YAML have no
tuples); an integer is accepted for a float. PyYAML reads ``1e-4`` (no dot: YAML 1.1) as a
string, so a string in exponent notation is accepted for a float; no other string is.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Callable, Optional, TypeVar, Union

T = TypeVar("T")
_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class _Mismatch(Exception):
    pass


def describe(tp: Any) -> str:
    """``int`` → "an integer", ``Optional[tuple[int, ...]]`` → "a list of integers or null"..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "anything"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if tp in (tuple, list):
        return "a list"
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        item = args[0] if args else Any
        return "a list" if item is Any else f"a list of {_plural(describe(item))}"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        value = args[1] if len(args) == 2 else Any
        return "a mapping" if value is Any else f"a mapping of {_plural(describe(value))}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, tp.__name__)


def _plural(text: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings",
            "true or false": "booleans"}.get(text, text)


def check_value(value: Any, tp: Any) -> Any:
    """``value`` converted to annotation ``tp`` (lists to tuples, ints to floats), or
    :class:`_Mismatch`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for member in args:
            if member is type(None):
                continue
            try:
                return check_value(value, member)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch
            return tuple(check_value(v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        items = [check_value(v, item) for v in value]
        return tuple(items) if (origin or tp) is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        return {check_value(k, key_tp): check_value(v, value_tp) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _Mismatch
        return value  # checked by the caller's nested from_dict
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXPONENT.match(value.strip()):
            return float(value)
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value  # an annotation this checker does not know: left to the target


def _parameters(target: Callable) -> dict[str, tuple[Any, bool]]:
    """``{name: (annotation, required)}`` of a dataclass's fields or the keyword parameters of a
    function or a class's ``__init__``."""
    is_class = isinstance(target, type) and not dataclasses.is_dataclass(target)
    hints = typing.get_type_hints(target.__init__ if is_class else target)
    out = {}
    if dataclasses.is_dataclass(target):
        for f in dataclasses.fields(target):
            if f.init:
                required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                out[f.name] = (hints.get(f.name, Any), required)
        return out
    for name, p in inspect.signature(target).parameters.items():
        if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD) or name == "self":
            continue
        out[name] = (hints.get(name, Any), p.default is p.empty)
    return out


def check_kwargs(
    target: Callable,
    data: Any,
    where: str = "",
    skip: tuple[str, ...] = (),
    extra: Optional[type] = None,
    kind: str = "keys",
    section: Optional[str] = None,
) -> dict[str, Any]:
    """``data`` checked as keyword arguments of ``target`` (a dataclass or a function), converted.

    ``where``: what the message names, e.g. ``"configs/x.yaml `train`"``. ``skip``: parameters
    that ``data`` may not set (they are not part of the file). ``extra``: a dataclass whose fields
    are accepted as well (for a ``**kwargs`` that goes to it). Required parameters must be present.
    ``kind`` names the keys in the unknown-key message (``unknown TrainConfig keys [...]``).
    ``section``: the YAML section ``data`` comes from; messages then read
    ``file: unknown `section` keys [...]`` and ``file: `section.key` must be ...``.
    """
    prefix = f"{where}: " if where else ""
    if section is not None:
        kind = f"`{section}` keys"
    dotted = (lambda k: f"{section}.{k}") if section is not None else (lambda k: k)
    if section is not None and not isinstance(data, Mapping):
        raise ValueError(f"{prefix}section `{section}` must be a mapping of settings, got {_shown(data)}")
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix}expected a mapping of settings, got {_shown(data)}")
    params = {k: v for k, v in _parameters(target).items() if k not in skip}
    if extra is not None:
        params.update({k: (tp, False) for k, (tp, _) in _parameters(extra).items() if k not in params})
    unknown = sorted(str(k) for k in data if k not in params)
    if unknown:
        raise ValueError(f"{prefix}unknown {kind} {unknown}; known: {', '.join(sorted(params))}")
    missing = [k for k, (_, required) in params.items() if required and k not in data]
    if missing:
        raise ValueError(f"{prefix}missing {', '.join(f'`{dotted(k)}`' for k in missing)}")
    out = {}
    for key, value in data.items():
        tp = params[key][0]
        try:
            out[key] = check_value(value, tp)
        except _Mismatch:
            raise ValueError(f"{prefix}`{dotted(key)}` must be {describe(tp)}, got {_shown(value)}") from None
        if dataclasses.is_dataclass(tp) and isinstance(out[key], Mapping):
            out[key] = from_dict(tp, out[key], where, section=dotted(key))
    return out


def from_dict(cls: type[T], data: Any, where: str = "", skip: tuple[str, ...] = (), kind: str = "keys",
              section: Optional[str] = None) -> T:
    """``cls(**data)`` after :func:`check_kwargs`; a ``ValueError`` of ``cls``'s own checks
    (``__post_init__``) is prefixed with ``where`` (and the section)."""
    kwargs = check_kwargs(cls, data, where, skip, kind=kind, section=section)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        place = f"{where} `{section}`" if section is not None else where
        raise ValueError(f"{place.strip()}: {exc}" if place else str(exc)) from None


def _shown(value: Any) -> str:
    """``'abc' (str)``, ``a list [1, 2]``, ``a mapping {...}``: short, with the YAML kind."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, (list, tuple)):
        return f"a list {text}"
    if isinstance(value, Mapping):
        return f"a mapping {text}"
    return f"{text} ({type(value).__name__})"
