"""Flag groups: options declared once, as the fields of a dataclass, expanded into a command's signature.

A command parameter annotated with a flag-group dataclass (optionally `Annotated[Group, Omit("field", ...)]`)
becomes one typer option per field, in field order, each with the field's `Annotated[..., Option]` type and
default; the command is then called with the group object. The expansion is mechanical: a field is a flag, and
an omitted name that is not a field fails at import time, so a renamed field cannot silently drop a flag.

Every option's type also carries its validator (`core.validate`, beside the Option in the `Annotated` type): the
expanded command runs them all, in option order, before its body (`cli_checks` lists them), so a bad value is one
`error:` line naming the flag before anything is read, written or started.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from typer.models import ArgumentInfo, ParameterInfo

from offline_bench.core.validate import Validator, validate


class Omit:
    """`Annotated[Group, Omit("tokenizer", ...)]`: the group without these flags (their fields keep defaults)."""

    def __init__(self, *names: str) -> None:
        self.names = names


def _group(annotation: Any) -> tuple[type | None, tuple[str, ...]]:
    """(flag-group class, omitted field names) of a parameter annotation; (None, ()) for a plain parameter."""
    omit: tuple[str, ...] = ()
    base = annotation
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        omit = sum((m.names for m in meta if isinstance(m, Omit)), ())
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return base, omit
    if omit:
        raise TypeError(f"Omit(...) on {base!r}, which is not a flag group")
    return None, ()


def group_flags(cls: type, omit: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """The flags of a group, one keyword-only parameter per field not omitted (checked: each carries an Option)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(omit) - set(fields))
    if unknown:
        raise TypeError(f"Omit({', '.join(unknown)}): {cls.__name__} has no such field")
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for name, f in fields.items():
        if name in omit:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"Omit({name}): {cls.__name__}.{name} has no default to fall back on")
            continue
        meta = typing.get_args(hints[name])[1:] if typing.get_origin(hints[name]) is typing.Annotated else ()
        if not any(isinstance(m, ParameterInfo) for m in meta):
            raise TypeError(f"{cls.__name__}.{name} has no typer Option in its type: every field is a flag")
        default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[name]))
    return out


def expand(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its flag groups expanded into flat options (`__signature__`, which typer reads)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    flat: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in inspect.signature(fn).parameters.values():
        cls, omit = _group(hints.get(p.name, p.annotation))
        if cls is None:
            flat.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation)))
            continue
        flags = group_flags(cls, omit)
        groups[p.name] = (cls, [f.name for f in flags])
        flat += flags
    names = [p.name for p in flat]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"{fn.__name__}: flag {', '.join(clashes)} given twice (in a group and beside it?)")

    checks = option_checks(flat)

    @functools.wraps(fn)
    def with_groups(**values: Any) -> Any:
        validate(values, checks)  # every option's own validator, before the command's body
        for name, (cls, fields) in groups.items():
            values[name] = cls(**{f: values.pop(f) for f in fields})
        return fn(**values)

    with_groups.cli_checks = checks  # type: ignore[attr-defined]
    with_groups.__signature__ = inspect.Signature(flat)  # type: ignore[attr-defined]
    with_groups.__annotations__ = {p.name: p.annotation for p in flat}  # resolved: typer's get_type_hints
    return with_groups


def option_checks(params: list[inspect.Parameter]) -> dict[str, tuple[str, Validator]]:
    """{parameter: (its flag as the user writes it, its validator)} for every parameter whose type declares one."""
    checks = {}
    for p in params:
        meta = typing.get_args(p.annotation)[1:] if typing.get_origin(p.annotation) is typing.Annotated else ()
        validators = [m for m in meta if isinstance(m, Validator)]
        infos = [m for m in meta if isinstance(m, ParameterInfo)]
        if len(validators) > 1:
            raise TypeError(f"{p.name}: {len(validators)} validators in its type; give it one")
        if validators:
            checks[p.name] = (_flag(p.name, infos[0] if infos else None), validators[0])
    return checks


def _flag(name: str, info: ParameterInfo | None) -> str:
    """--long-name of an option (its first one), NAME of an argument."""
    if isinstance(info, ArgumentInfo):
        return name.upper()
    decls = [*([info.default] if info is not None and isinstance(info.default, str) else []),
             *((info.param_decls or ()) if info is not None else ())]
    return next((d for d in decls if d.startswith("--")), f"--{name.replace('_', '-')}")


def command(name: str | None = None, **settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a CLI command: flag groups expanded; `cli.main` registers it (in its help order) under `name`."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = expand(fn)
        wrapped.cli_name, wrapped.cli_settings = name, settings  # type: ignore[attr-defined]
        return wrapped
    return deco
