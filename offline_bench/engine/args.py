"""engine.args"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from offline_bench.analysis.gap import SCHED_KEYS
from offline_bench.core.errors import BenchError
from offline_bench.core.logcapture import LogCapture


def known_engine_args() -> set[str]:
    """Field names of vllm.EngineArgs in the installed release (probed, not pinned)."""
    with LogCapture():  # importing vLLM prints platform chatter; keep the user's error output to one line
        # vLLM is heavy to import (torch, CUDA): only where an engine is used
        from vllm.engine.arg_utils import EngineArgs

    return {f.name for f in dataclasses.fields(EngineArgs)}


def check_engine_args(extra: dict[str, Any]) -> None:
    if not extra:
        return
    known = known_engine_args()
    for key in extra:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BenchError(f"unknown --engine-arg '{key}'{hint}: use a field of vllm.EngineArgs, "
                             "as in `vllm serve --help` with dashes turned into underscores")


def server_scheduler_defaults(resolved: dict[str, Any], user_set: set[str]) -> dict[str, tuple[int, int]]:
    """{knob: (what this LLM-class engine runs with, what `vllm serve` would pick)} for the scheduler knobs the
    user left unset and where the two differ. vLLM gives the OpenAI server smaller defaults than the LLM class
    (H100: 8,192 vs 16,384 batched tokens; CPU: 2,048 vs 4,096 and 128 vs 256 sequences)."""
    try:
        # vLLM is heavy to import (torch, CUDA): only where an engine is used
        from vllm.engine.arg_utils import EngineArgs
        from vllm.usage.usage_lib import UsageContext

        tokens, seqs = EngineArgs.get_batch_defaults(resolved["tensor_parallel_size"]
                                                     * resolved["pipeline_parallel_size"])
        serve = {"max_num_batched_tokens": tokens.get(UsageContext.OPENAI_API_SERVER),
                 "max_num_seqs": seqs.get(UsageContext.OPENAI_API_SERVER)}
    except (ImportError, AttributeError, TypeError, KeyError):  # a release without the probe: no step
        return {}
    if serve["max_num_batched_tokens"] and resolved.get("enable_chunked_prefill") is False:
        serve["max_num_batched_tokens"] = max(serve["max_num_batched_tokens"], resolved["max_model_len"])
    return {k: (resolved[k], serve[k]) for k in SCHED_KEYS
            if k not in user_set and serve[k] is not None and serve[k] != resolved[k]}
