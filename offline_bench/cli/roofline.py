"""`roofline`: a model's hardware ceilings on a GPU, without an engine."""

from __future__ import annotations

from typing import Annotated

import typer

from offline_bench.cli import options as o
from offline_bench.cli.flags import command
from offline_bench.cli.options import Fmt, Opt
from offline_bench.core.config import parse_int_list
from offline_bench.core.errors import BenchError
from offline_bench.engine import probes
from offline_bench.model.limits import check_model
from offline_bench.predict import roofline as roofline_mod
from offline_bench.report.formats import check_format, render


@command("roofline")
def roofline(
    *, model: o.Model = "preset:tiny-llama", gpu: o.GpuName = None, measure_gpu: o.MeasureGpu = False,
    batch_sizes: Annotated[str, Opt(help="Comma list of decode batch sizes."), o.INTS] = "1,8,32,128",
    context: Annotated[int, Opt(help="Tokens of context per request (KV read per step)."), o.LENGTH] = 1024,
    num_gpus: Annotated[int, Opt(help="GPUs of a tensor-parallel group (aggregate bandwidth and FLOP/s)."),
                        o.SIZES] = 1,
    kv_cache_dtype: o.KvDtype = "auto", fmt: Fmt("roofline") = "table",
) -> None:
    """A model's hardware ceilings on a GPU, without an engine.

    Example: offline-bench roofline --model preset:llama-3.1-8b --gpu h100-sxm --batch-sizes 1,32,256
    """
    check_format("roofline", fmt)
    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    info, _ = check_model(model, tensor_parallel_size=num_gpus, tp_flag="--num-gpus")  # a TP group's GPUs
    if info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    spec = probes.measure_gpu() if measure_gpu else roofline_mod.resolve_gpu(gpu)
    r = roofline_mod.roofline(model, info, spec, sizes, context, num_gpus, kv_dtype=kv_cache_dtype)
    typer.echo(render("roofline", fmt, r))
