"""What `tune` predicts with: a calibration run (its fitted step cost and measured KV terms, on its own GPU or moved
to another by datasheet ratios), or, with none, the reference calibration scaled to the model and the GPU.

The reference (reference.json beside this module, `reference_terms` of the project's H200 run of the 8B preset,
docs/results/h200-predict/measured/gmu-0.9.json.gz) is that run's step cost split as `predict/transfer.py` splits
it; another model's terms scale by what each one costs (weights and KV bytes read at the target's bandwidth, a
decoded token's matmul FLOPs, a prompt token's FLOPs, the attention math per KV token, the launches of a step
without a CUDA graph by the layer count), and its KV cache comes from the model-based plan. No measurement backs
that scaling yet: its expected error says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUS, GPUSpec, gpu_spec
from offline_bench.model.info import ModelInfo
from offline_bench.model.limits import check_model
from offline_bench.predict.plan import check_supported, param_bytes, plan_point
from offline_bench.predict.replay import Calibrated
from offline_bench.predict.roofline import matmul_params, resolve_gpu, weight_bytes_read
from offline_bench.predict.stepmodel import StepModel
from offline_bench.predict.transfer import StepSplit, as_model, read_share
from offline_bench.results.plan import Calibration, PlanRow, PlanSettings

PREFILL_CTX = 256  # the context a prompt token's attention FLOPs are counted at (half a 512-token prompt)
DECODE_BATCH = 64  # the batch a step's weight read is counted at (MoE: the experts it touches)


@dataclass
class Basis:
    model: str
    source: str  # the calibration run's path, or what the reference is
    info: ModelInfo
    gpu: str  # the GPU predicted for
    steps: StepModel  # on that GPU
    device: str
    total_gib: float | None
    calibration: Calibration | None  # None: the model-based KV plan
    base: dict[str, Any]  # the calibration's engine settings (what a setting changes is measured against them)
    requests: list[tuple[int, int]]  # the calibration's own workload (empty for the reference)
    request_rate: float | None
    resolved: dict[str, Any]  # engine arguments as the calibration resolved them (CUDA graphs)
    engine_args: dict[str, Any]  # as the calibration passed them (the recommended command lines keep them)
    tp: int = 1
    gpu_moved: bool = False
    reference: bool = False
    notes: list[str] = field(default_factory=list)

    def plan(self, s: PlanSettings) -> PlanRow:
        return plan_point(self.info, s, self.device, self.total_gib, self.calibration)

    def kv_scale(self, kv_dtype: str) -> float:
        """KV reads cost in proportion to their bytes: the setting's KV dtype against the calibration's."""
        return self.info.kv_bytes_per_token(kv_dtype) / self.info.kv_bytes_per_token(
            self.base.get("kv_cache_dtype") or "auto")


def from_calibration(cal: Calibrated, gpu: str | None) -> Basis:
    steps, target, moved = cal.on_gpu(gpu)
    r = cal.result
    return Basis(model=r.model, source=cal.path, info=cal.info,
                 gpu=target.name if target else (r.environment.gpu_name or "cpu"), steps=steps,
                 device=cal.calibration.device,
                 total_gib=target.memory_gib if target else cal.calibration.total_gib, calibration=cal.calibration,
                 base=cal.calibration.settings.model_dump(),
                 requests=[(q.input_tokens, q.output_tokens) for q in r.requests if q.repeat == 0],
                 request_rate=r.workload.request_rate, resolved=cal.resolved,
                 engine_args={k: v for k, v in r.engine_args.items() if k != "resolved"}, tp=cal.tp,
                 gpu_moved=target is not None, notes=moved)


@cache
def reference() -> dict[str, Any]:
    return json.loads((resources.files("offline_bench.predict") / "reference.json").read_text())


def reference_terms(cal: Calibrated) -> dict[str, Any]:
    """What reference.json holds, from a calibration run: its step split and the model quantities it scales by."""
    if cal.split is None or cal.gpu is None:
        raise BenchError(f"{cal.path}: a reference needs a run on a GPU of the table")
    return {"source": cal.path, "model": cal.result.model, "gpu": cal.gpu.name, "split": cal.split.model_dump(),
            "start_ms": cal.steps.start_ms, "uncaptured_ms": cal.steps.uncaptured_ms, **_quantities(cal.info)}


def _quantities(info: ModelInfo) -> dict[str, float]:
    return {"weights_read_bytes": weight_bytes_read(info, DECODE_BATCH, param_bytes(info)),
            "kv_bytes_per_token": info.kv_bytes_per_token("auto"),
            "decode_flops": 2.0 * matmul_params(info),
            "prefill_flops": 2.0 * matmul_params(info) + 4.0 * info.num_layers * PREFILL_CTX * info.num_heads *
            info.head_dim,
            "attention_per_kv_token": float(info.num_layers * info.num_heads * info.head_dim),
            "num_layers": info.num_layers}


def from_reference(model: str, info: ModelInfo, gpu: GPUSpec) -> Basis:
    """The reference calibration's step cost for `model` on `gpu` (one GPU, vLLM's defaults, CUDA graphs on)."""
    ref = reference()
    src, q = gpu_spec(ref["gpu"]), _quantities(info)
    s = StepSplit(**ref["split"])
    bw, flops = gpu.memory_bandwidth_gbps * 1e9, src.bf16_dense_tflops / gpu.bf16_dense_tflops
    scaled = StepSplit(gpu=gpu.name, host_ms=s.host_ms, weights_read_ms=q["weights_read_bytes"] / bw * 1000.0,
                       per_kv_read_ms=q["kv_bytes_per_token"] / bw * 1000.0,
                       per_kv_math_ms=s.per_kv_math_ms * q["attention_per_kv_token"] / ref["attention_per_kv_token"]
                       * flops,
                       per_prefill_token_ms=s.per_prefill_token_ms * q["prefill_flops"] / ref["prefill_flops"] * flops,
                       per_decode_token_ms=s.per_decode_token_ms * q["decode_flops"] / ref["decode_flops"] * flops)
    unc = ref["uncaptured_ms"]
    base = StepModel(fixed_ms=0.0, per_prefill_token_ms=0.0, per_kv_token_ms=0.0, graph_tokens=512,
                     uncaptured_ms=None if unc is None else unc * q["num_layers"] / ref["num_layers"],
                     steps_fitted=0, total_error_pct=0.0, median_step_error_pct=0.0, start_ms=ref["start_ms"],
                     fixed_basis=f"reference calibration ({ref['model']} on {ref['gpu']}) scaled")
    steps = as_model(scaled, base)
    steps.kv_read_share = round(read_share(scaled), 6)
    note = (f"No calibration run: the step cost is the reference calibration's ({ref['model']} on {ref['gpu']}, "
            f"{ref['source']}) scaled to {model} on {gpu.name} by bytes read and FLOPs; the KV cache is the "
            "model-based plan. Never checked against a measurement: calibrate on a run of the model for a "
            "measured basis (--calibrate).")
    return Basis(model=model, source=f"reference calibration ({ref['model']} on {ref['gpu']}) scaled",
                 info=info, gpu=gpu.name, steps=steps, device="cuda", total_gib=gpu.memory_gib, calibration=None,
                 base={"kv_cache_dtype": "auto"}, requests=[], request_rate=None,
                 resolved={"enforce_eager": False, "device": "cuda"}, engine_args={}, reference=True,
                 gpu_moved=gpu.name != src.name, notes=[note])


def basis_for(calibrate: str | None, model: str | None = None, gpu: str | None = None, input_len: int | None = None,
              output_len: int | None = None) -> tuple[Calibrated | None, Basis]:
    """The calibration run, or (none given) the reference scaled to --model on --gpu (or this machine's GPU)."""
    if calibrate is not None:
        cal = Calibrated(calibrate, purpose="tune")
        if model is not None and model != cal.result.model:
            raise BenchError(f"--calibrate {calibrate} is a run of {cal.result.model}, not {model}: calibrate on a "
                             "run of the model to tune")
        return cal, from_calibration(cal, gpu)
    if model is None or not (input_len and output_len):
        raise BenchError("without --calibrate, give --model, --input-len and --output-len (and --gpu NAME off a GPU "
                         "machine); a calibration run of the model (--calibrate run.json) predicts better")
    info, config = check_model(model)
    if info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    check_supported(info, config)
    spec = resolve_gpu(gpu, required=False)
    if spec is None:
        raise BenchError(f"no GPU detected: pass --gpu NAME ({', '.join(GPUS)}) or --calibrate RUN")
    return None, from_reference(model, info, spec)

