"""Output formats: every renderer registered once with the formats it can write, so each command checks its
--format before any work and renders through one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_bench.core.errors import BenchError

_RENDERERS: dict[str, tuple[tuple[str, ...], Callable[..., str]]] = {}


def renders(kind: str, formats: tuple[str, ...]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register `fn(*objects, fmt=...)` as the renderer of `kind`."""
    def deco(fn: Callable[..., str]) -> Callable[..., str]:
        _RENDERERS[kind] = (formats, fn)
        return fn
    return deco


def formats_of(kind: str) -> tuple[str, ...]:
    return _RENDERERS[kind][0]


def check_format(kind: str, fmt: str) -> None:
    allowed = formats_of(kind)
    if fmt not in allowed:
        raise BenchError(f"--format {fmt} is not one of {', '.join(allowed)}")


def render(kind: str, fmt: str, *objects: Any) -> str:
    check_format(kind, fmt)
    return _RENDERERS[kind][1](*objects, fmt=fmt)
