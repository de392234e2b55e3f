"""What a file the tool wrote is: its `kind` field, or for a file written before kinds (everything in docs/results
up to now) the kind its content shows. Reading goes through here; nothing on disk is rewritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from offline_bench.core.errors import NotAResult

# every kind of file, in words (with the article a message needs)
KINDS = {
    "run": "a run result",  # run, serve-probe, import, predict, each sweep point that finished (any `mode`)
    "phases": "a phases result",
    "gap": "an explain-gap ladder",
    "sweep": "a sweep summary",  # a sweep's summary.json
    "sweep-spec": "a sweep definition",  # a sweep's sweep.json
    "failed-point": "a failed sweep point",  # points/KEY.json of a point that did not finish
    "plan": "a plan table",  # plan --format json
    "startup": "start-up facts",  # startup --format json, or a vLLM log
    "scaling": "a scaling report",  # scaling --format json
    "tune": "a tune answer",  # tune --format json / --output
}

M = TypeVar("M", bound=BaseModel)


def legacy_kind(doc: Any) -> str | None:
    """The migration: the kind of a document without a `kind` field, recognised by its content (None: none of
    ours). The only place that tells kinds apart by their keys."""
    if isinstance(doc, list):
        return "plan" if doc and isinstance(doc[0], dict) and "kv_cache_tokens" in doc[0] else None
    if not isinstance(doc, dict):
        return None
    keys = doc.keys()
    engines = doc.get("engines")
    checks = (
        ("phases", doc.get("mode") == "phases"),
        ("run", {"throughput", "schema_version"} <= keys),
        ("gap", {"reports", "runs"} <= keys),
        ("sweep", {"spec", "rows"} <= keys),
        ("startup", "vllm_version" in keys and ("weights_gib" in keys or "kv_cache_tokens" in keys)),
        ("startup", isinstance(engines, list) and bool(engines) and isinstance(engines[0], dict)
         and "vllm_version" in engines[0]),  # a data-parallel log's facts, one entry per engine
        ("sweep-spec", {"base", "grid"} <= keys),
        ("failed-point", doc.get("status") == "failed" and "settings" in keys),
        ("scaling", {"baseline", "runs", "decode", "warnings"} <= keys),
    )
    return next((kind for kind, found in checks if found), None)


def kind_of(doc: Any) -> str | None:
    """The kind the document says it is; for one without `kind`, the kind its content shows (None: not ours)."""
    if isinstance(doc, dict) and "kind" in doc:
        return doc["kind"] if isinstance(doc["kind"], str) else None
    return legacy_kind(doc)


def migrate(doc: Any, kind: str) -> Any:
    """A document of `kind` as it is written now: the kind set, a plan's bare list of rows moved under `rows`."""
    if kind == "plan" and isinstance(doc, list):
        return {"kind": "plan", "rows": doc}
    if isinstance(doc, dict) and "kind" not in doc:
        return {"kind": kind, **doc}
    return doc


def describe(kind: str | None, doc: Any = None) -> str:
    """What a document is, in words: 'a serving run result', 'a plan table', 'not an offline-bench result'."""
    if kind is None:
        return "not an offline-bench result"
    if kind not in KINDS:
        return f"of kind '{kind}', which this offline-bench does not read"
    mode = doc.get("mode") if kind == "run" and isinstance(doc, dict) else None
    if isinstance(mode, str) and mode:
        return f"{'an' if mode[0] in 'aeiou' else 'a'} {mode} run result"
    return KINDS[kind]


def wrong_kind(path: str | Path, kind: str | None, doc: Any, purpose: str, need: str) -> NotAResult:
    """One line for a file of another kind than a reader takes: "'x.json' is a plan table; predict needs a run
    result"."""
    what = describe(kind, doc)
    return NotAResult(f"'{path}' is {what}; {purpose} needs {need}", what)


def validate(model: type[M], doc: dict[str, Any], path: str | Path) -> M:
    """The document (of the model's kind) as `model`; one line when its schema_version is another or fields do not
    match."""
    what = describe(kind_of(doc), doc)
    field = model.model_fields.get("schema_version")
    if field is not None and doc.get("schema_version", field.default) != field.default:
        version, reads = doc.get("schema_version"), field.default
        raise NotAResult(f"'{path}' is {what} of schema_version {version!r}; this offline-bench reads {reads}",
                         f"{what} of schema_version {version!r} (this offline-bench reads {reads})")
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        where = ".".join(map(str, e.errors()[0]["loc"])) or "the whole document"
        n = e.error_count()
        fields = f"{n} fields that do not match" if n > 1 else "1 field that does not match"
        reason = f"{what} with {fields} (first {where})"
        raise NotAResult(f"'{path}' is {reason}: pass a file this offline-bench wrote", reason) from None
