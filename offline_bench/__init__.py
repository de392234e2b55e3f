"""offline-bench: measure what vLLM's in-process engine really does.

The public API, imported lazily (importing `offline_bench` imports neither vLLM nor any subpackage):

    from offline_bench import EngineConfig, WorkloadConfig, RunConfig, run_benchmark, load_result
    result = run_benchmark(RunConfig(engine=EngineConfig(model="preset:tiny-llama"), workload=WorkloadConfig()))
"""

from __future__ import annotations

import importlib
from typing import Any

from offline_bench.core.version import SUPPORTED_VLLM, __version__

# The subpackages, lowest first: each imports only those before it (tests/unit/test_structure.py enforces it).
LAYERS = ("core", "results", "model", "workloads", "predict", "analysis", "engine", "serving", "measure", "report",
          "cli")

_API = {
    # configs and errors
    "EngineConfig": "core.config", "WorkloadConfig": "core.config", "RunConfig": "core.config",
    "BenchError": "core.errors",
    # results: the run result, any file the tool writes, atomic writes
    "RunResult": "results.run", "load_result": "results.load", "write_atomic": "results.run",
    # models and workloads
    "resolve_model": "model.presets", "build_workload": "workloads.requests",
    # predictions without an engine
    "PlanSettings": "results.plan", "plan_point": "predict.plan", "Calibrated": "predict.replay",
    "predict_run": "predict.replay", "detect_gpu": "core.gpus", "CHANGE_KINDS": "predict.accuracy",
    "ERROR_METRICS": "predict.accuracy",
    # the best settings for a workload and its SLOs
    "tune": "predict.tune", "TuneWorkload": "predict.tune", "TuneGrid": "predict.tune", "TuneResult": "results.tune",
    "basis_for": "predict.basis",
    # measuring
    "Engine": "engine.llm", "run_benchmark": "measure.runner",
    # output
    "render": "report.formats", "write_report": "report.html", "write_plots": "report.plots",
}
# public name -> the module's own name (`predict` is also a subpackage: the function is exported as predict_run)
_ALIASES = {"load_result": "load", "predict_run": "predict", "CHANGE_KINDS": "KINDS", "ERROR_METRICS": "METRICS"}

__all__ = ["LAYERS", "SUPPORTED_VLLM", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'offline_bench' has no attribute '{name}'")
    module = importlib.import_module(f"offline_bench.{_API[name]}")
    return getattr(module, _ALIASES.get(name, name))
