"""The engine tier: every test here uses the session's CPU engine (tests/conftest.py), never one of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from tests.helpers import cli


@pytest.fixture(autouse=True)
def _no_engine_of_its_own(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting another engine fails the test (the session engine is up before this runs): a test that needs
    other engine settings belongs in tests/e2e."""
    from offline_bench.engine.llm import Engine

    def refuse(self, *args: object, **kwargs: object) -> None:  # noqa: ANN001
        pytest.fail("an engine test started an engine of its own: use the session engine (the `engine` fixture) "
                    "or move the test to tests/e2e", pytrace=True)

    monkeypatch.setattr(Engine, "__init__", refuse)


@pytest.fixture
def engine_cli(engine, capsys: pytest.CaptureFixture,
               monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """`cli(capsys, *args)` whose `run` measures on the session engine instead of starting one: the command's
    engine settings must be the session engine's (MAX_MODEL_LEN and KV_ARGS on the tiny-llama preset), and
    --save-log, which keeps an engine's whole log, needs an engine of its own (tests/e2e)."""
    from offline_bench.measure import levels

    def session_engine(cfg, echo_log: bool = False, save_log: str | None = None):  # noqa: ANN001, ANN202
        if cfg.model_dump() != engine.cfg.model_dump():
            pytest.fail(f"the command's engine settings are not the session engine's: {cfg} vs {engine.cfg}",
                        pytrace=False)
        if save_log:
            pytest.fail("--save-log keeps the log of an engine's whole life: a test of it belongs in tests/e2e",
                        pytrace=False)
        return contextlib.nullcontext(engine)  # `with Engine(...) as e`: the session engine, left running

    monkeypatch.setattr(levels, "Engine", session_engine)
    return lambda *args: cli(capsys, *args)
