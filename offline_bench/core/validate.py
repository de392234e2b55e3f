"""One validation layer: a validator per kind of option value (ranges, units, lists, choices, text).

Every option of every command declares its validator beside its typer Option, in its `Annotated` type
(`Annotated[int, Option(...), POSITIVE_INT]`); `cli.flags` runs them all before the command's body, so an option
accepts the same values wherever it appears, and a bad value is one line naming the flag and an accepted example,
before anything is read, written or started. (The limits of the model itself, which need its config, are
`model.limits`.)

A validator declares the classes of value it accepts beyond the ordinary ones (`accepts`: "zero" for --seed,
"inf" for --request-rate, "empty" for --api-key), so a test can generate the bad ones of each option's kind.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from offline_bench.core.config import GOODPUT_KEYS, parse_bytes, parse_engine_arg, parse_goodput, parse_gpu_hour_cost
from offline_bench.core.errors import BenchError

# The classes of value an option can be given beyond the ordinary (a validator `accepts` those it takes)
VALUE_CLASSES = ("zero", "negative", "nan", "inf", "above", "wrong_unit", "wrong_type", "empty_item", "empty",
                 "unknown")


class Validator:
    """Checks one option value (None: not given, nothing to check); `example` is a value it accepts. An option
    accepts the same values in every command that takes it, unless its validator `varies` by command (--format:
    what that command can write)."""

    kind = "text"
    varies = False

    def __init__(self, example: str, accepts: Sequence[str] = ()) -> None:
        self.example = example
        self.accepts = frozenset(accepts)

    def __call__(self, value: Any, flag: str) -> None:
        if value is not None:
            self.check(value, flag)

    def check(self, value: Any, flag: str) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind}, e.g. {self.example})"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Number(Validator):
    """An integer or a finite number in a range (`inf` allowed only where declared)."""

    def __init__(self, example: str, *, integer: bool, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, inf: bool = False, what: str = "",
                 message: str = "{flag} {value} must be {what}, e.g. {flag} {example}") -> None:
        self.integer, self.lo, self.hi, self.lo_open, self.hi_open, self.inf = integer, lo, hi, lo_open, hi_open, inf
        self.kind = "int" if integer else "float"
        self.what, self.message = what, message
        accepts = [c for c, x in (("zero", 0), ("negative", -1)) if self.in_range(x)] + (["inf"] if inf else [])
        super().__init__(example, accepts)

    def in_range(self, x: float) -> bool:
        low = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        return low and (self.hi is None or (x < self.hi if self.hi_open else x <= self.hi))

    def _fail(self, value: Any, flag: str) -> BenchError:
        return BenchError(self.message.format(flag=flag, value=_show(value), what=self.what, example=self.example))

    def parse(self, value: Any, flag: str) -> float:
        if isinstance(value, bool):
            raise self._fail(value, flag)
        if isinstance(value, (int, float)):
            return value
        try:
            return int(value) if self.integer else float(value)
        except (TypeError, ValueError):
            raise self._fail(value, flag) from None

    def check(self, value: Any, flag: str) -> None:
        x = self.parse(value, flag)
        if math.isnan(x) or (math.isinf(x) and not self.inf) or (not math.isinf(x) and not self.in_range(x)):
            raise self._fail(value, flag)


def positive_int(example: str, what: str = "a positive integer") -> Number:
    return Number(example, integer=True, lo=1, what=what)


def non_negative_int(example: str) -> Number:
    return at_least(0, example)


def at_least(minimum: int, example: str) -> Number:
    return Number(example, integer=True, lo=minimum, what=f"an integer >= {minimum}")


def positive_number(example: str, inf: bool = False, what: str = "") -> Number:
    return Number(example, integer=False, lo=0, lo_open=True, inf=inf,
                  what=what or "a positive number" + (" or inf" if inf else ""))


def fraction(example: str) -> Number:
    """(0, 1], in the words --gpu-memory-utilization always used."""
    return Number(example, integer=False, lo=0, lo_open=True, hi=1,
                  message="{flag} {value} is outside (0, 1]: pass a fraction such as {example}")


def share(example: str) -> Number:
    """[0, 1)."""
    return Number(example, integer=False, lo=0, hi=1, hi_open=True, what="in [0, 1)")


class ListOf(Validator):
    """A comma list of `item` values, no item empty. A bad item is the list's line (`{flag} takes {what}, e.g.
    ...`), or with `per_item` the item's own line."""

    def __init__(self, item: Validator, example: str, what: str, per_item: bool = False) -> None:
        self.item, self.what, self.per_item = item, what, per_item
        self.kind = f"{item.kind}_list"
        super().__init__(example, item.accepts - {"empty"})

    def _fail(self, value: Any, flag: str) -> BenchError:
        return BenchError(f"{flag} takes {self.what}, e.g. {self.example} (got '{value}')")

    def items(self, value: Any, flag: str) -> list[str]:
        """The items of a checked list."""
        parts = [p.strip() for p in str(value).split(",")]
        if not all(parts):
            raise self._fail(value, flag)
        return parts

    def check(self, value: Any, flag: str) -> None:
        for part in self.items(value, flag):
            try:
                self.item.check(part, flag)
            except BenchError:
                if self.per_item:
                    raise
                raise self._fail(value, flag) from None


def int_list(example: str, minimum: int = 1, what: str = "") -> ListOf:
    """In the words `parse_int_list` always used, unless told others."""
    return ListOf(Number(example, integer=True, lo=minimum), example,
                  what or f"a comma list of integers >= {minimum}")


class ByteSize(Validator):
    """Bytes, or a size such as 64MiB or 2GiB (`core.config.parse_bytes`), at least one byte."""

    kind = "bytes"

    def check(self, value: Any, flag: str) -> None:
        parse_bytes(str(value), flag)


class Choice(Validator):
    """One of a fixed set (the first is the example); `former` values are accepted too but never listed (names
    an option had before, kept for scripts)."""

    kind = "choice"

    def __init__(self, *choices: str, casefold: bool = False, varies: bool = False, former: Sequence[str] = (),
                 message: str = "{flag} {value} is not one of {choices}") -> None:
        self.choices, self.casefold, self.message, self.varies = tuple(choices), casefold, message, varies
        self.former = tuple(former)
        super().__init__(choices[0])

    def check(self, value: Any, flag: str) -> None:
        known = [c.lower() for c in self.choices + self.former] if self.casefold else self.choices + self.former
        if (str(value).lower() if self.casefold else str(value)) not in known:
            raise BenchError(self.message.format(flag=flag, value=value, choices=", ".join(self.choices)))


class Text(Validator):
    """Free text (a path, a name, an id): not empty unless it `accepts` "empty"; with `pattern`, a name."""

    def __init__(self, example: str, accepts: Sequence[str] = (), pattern: str | None = None) -> None:
        self.pattern = pattern
        self.kind = "name" if pattern else "text"
        super().__init__(example, accepts)

    def check(self, value: Any, flag: str) -> None:
        text = str(value)
        if not text.strip() and "empty" not in self.accepts:
            raise BenchError(f"{flag} is empty: give a value, e.g. {flag} {self.example}")
        if self.pattern and text.strip() and not re.fullmatch(self.pattern, text):
            raise BenchError(f"{flag} '{text}' is not a name, e.g. {flag} {self.example}")


def name(example: str) -> Text:
    """A dtype, a load format: letters, digits, '_', '.', '-'."""
    return Text(example, pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class JsonObject(Validator):
    kind = "json"

    def parse(self, text: str, flag: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise BenchError(f"{flag} is not valid JSON ({e.msg}): e.g. '{self.example}'") from None
        if not isinstance(value, dict):
            raise BenchError(f"{flag} must be a JSON object, e.g. '{self.example}'")
        return value

    def check(self, value: Any, flag: str) -> None:
        self.parse(str(value), flag)


class KeyValue(Validator):
    """KEY=VALUE (`core.config.parse_engine_arg`), KEY not empty."""

    kind = "key_value"

    def check(self, value: Any, flag: str) -> None:
        key, _ = parse_engine_arg(str(value))
        if not key:
            raise BenchError(f"{flag} '{value}' must look like KEY=VALUE, e.g. {flag} {self.example}")


class Goodput(Validator):
    """NAME:MS SLOs (`core.config.parse_goodput`)."""

    kind = "goodput"

    def __init__(self) -> None:
        super().__init__("ttft:500")
        self.names = tuple(GOODPUT_KEYS)

    def check(self, value: Any, flag: str) -> None:
        parse_goodput([str(value)])


class GpuPrices(Validator):
    """USD per GPU-hour, one number or NAME=USD items (`core.config.parse_gpu_hour_cost`)."""

    kind = "prices"

    def check(self, value: Any, flag: str) -> None:
        parse_gpu_hour_cost(str(value), flag)


class Url(Validator):
    """An http(s) URL with a host."""

    kind = "url"

    def check(self, value: Any, flag: str) -> None:
        try:
            parts = urlsplit(str(value))
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
        except ValueError:  # e.g. a port that is not a number
            ok = False
        if not ok:
            raise BenchError(f"{flag} '{value}' is not an http(s) URL: give the server's root, e.g. {self.example}")


class Pair(Validator):
    """Two values (an option of nargs=2), each with its validator."""

    kind = "pair"

    def __init__(self, first: Validator, second: Validator) -> None:
        self.parts = (first, second)
        super().__init__(f"{first.example} {second.example}")

    def check(self, value: Any, flag: str) -> None:
        for v, x in zip(self.parts, value):
            v.check(x, flag)


def validate(values: dict[str, Any], checks: dict[str, tuple[str, Validator]]) -> None:
    """Every value with a validator, in order: `checks` maps a parameter to (its flag, its validator); a list
    value (a repeatable option, an argument of several) is checked item by item."""
    for param, (flag, validator) in checks.items():
        value = values.get(param)
        for item in value if isinstance(value, list) else [value]:
            validator(item, flag)
