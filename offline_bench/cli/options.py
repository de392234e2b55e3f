"""Every option more than one command takes, declared once: an `Annotated` type carrying its typer Option and its
validator (`core.validate`, run by `flags` before the command's body).

Flag groups (`configs`) use them as field types; commands use them as parameter types. An option only one
command takes is declared in that command's signature, with its validator the same way.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from offline_bench.core import validate as v
from offline_bench.core.gpus import GPUS
from offline_bench.report.formats import formats_of
from offline_bench.workloads.requests import VLLM_BENCH_DATASETS

Opt = typer.Option

# validators the options share
PATH, OUT, MODEL = v.Text("FILE"), v.Text("out.json"), v.Text("preset:tiny-llama")
POSITIVE, SIZES, LENGTH = v.positive_int("8"), v.positive_int("2"), v.positive_int("4096")
SECONDS, MEMORY_GIB = v.positive_number("300", what="positive (seconds)"), v.positive_number("79.18")
GMU, BYTES = v.fraction("0.9"), v.ByteSize("64MiB")
DTYPES, KV_DTYPE = v.Choice("auto", "half", "float16", "bfloat16", "float", "float32"), v.name("fp8")  # vLLM's
INTS = v.int_list("1,8,32")
LEVELS = v.int_list("1,10,64", what="positive integers")  # in the words of workloads.levels
RATE = v.positive_number("20", inf=True)
RATES = v.ListOf(RATE, "5,20,50", "positive numbers (requests/s) or inf")  # in the words of workloads.levels
GMUS = v.ListOf(GMU, "0.5,0.9", "a comma list of fractions in (0, 1]", per_item=True)
BYTE_SIZES = v.ListOf(BYTES, "32MiB,64MiB", "a comma list of sizes such as 64MiB", per_item=True)
DTYPE_LIST = v.ListOf(DTYPES, "auto,bfloat16", "a comma list of dtypes", per_item=True)
KV_DTYPES = v.ListOf(KV_DTYPE, "auto,fp8", "a comma list of KV cache dtypes", per_item=True)
GPU = v.Choice(*GPUS, casefold=True, message="unknown GPU '{value}': give {flag} one of {choices} (or --measure-gpu "
                                             "on the GPU)")
# plan measures nothing: another device is its memory size
PLAN_GPU = v.Choice(*GPUS, casefold=True, message="unknown GPU '{value}': give {flag} one of {choices} (or "
                                                  "--gpu-memory-gib for another device)")
TABLE_GPU = v.Choice(*GPUS, casefold=True, message="unknown GPU '{value}': give {flag} one of {choices}")
URL, KEY = v.Url("http://127.0.0.1:8000"), v.Text("sk-123456", accepts=["empty"])
PORT = v.Number("8000", integer=True, lo=1, hi=65535, what="a port in [1, 65535]")
# value types carrying their validator, for an option one command declares: `Annotated[o.Count, Opt(...)]`
Count, Seconds = Annotated[Optional[int], POSITIVE], Annotated[Optional[float], SECONDS]
Share, BaseUrl = Annotated[float, v.share("0.1")], Annotated[Optional[str], URL]
File, Dir, Dest = Annotated[Optional[str], PATH], Annotated[Optional[str], v.Text("DIR")], Annotated[Optional[str], OUT]

# ---------------------------------------------------------------- engine: vLLM's own names; None: its default
Model = Annotated[str, Opt("--model", help="HF id, local path, or preset:NAME (dummy weights)."), MODEL]
Tokenizer = Annotated[Optional[str], Opt(help="Tokenizer (default: the model's)."), MODEL]
Gmu = Annotated[Optional[float], Opt("--gpu-memory-utilization",
                                     help="Fraction of GPU memory for vLLM (default 0.9; on the CPU build, where it "
                                          "is a share of the NUMA node's RAM, the default is a 1 GiB KV cache "
                                          "instead)."), GMU]
KvBytes = Annotated[Optional[str], Opt("--kv-cache-memory-bytes",
                                       help="KV cache size per GPU instead of a share of memory, e.g. 64MiB, 2GiB "
                                            "(vLLM then ignores --gpu-memory-utilization)."), BYTES]
Mml = Annotated[Optional[int], Opt("--max-model-len", help="Context length (default: the model's)."), LENGTH]
MaxNumSeqs = Annotated[Optional[int], Opt(help="Most requests in one batch (vLLM default)."), POSITIVE]
Mnbt = Annotated[Optional[int], Opt(help="Token budget per step (vLLM default)."), LENGTH]
Dtype = Annotated[str, Opt(help="Weights/activations dtype."), DTYPES]
KvDtype = Annotated[str, Opt(help="KV cache dtype: auto, fp8, ..."), KV_DTYPE]
Eager = Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager",
                                      help="No CUDA graphs/compile (default: GPU off, CPU on).")]
Prefix = Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching",
                                       help="Prefix caching (vLLM default: on).")]
Tp = Annotated[int, Opt("--tensor-parallel-size", "-tp", help="GPUs each layer is split over."), SIZES]
Pp = Annotated[int, Opt("--pipeline-parallel-size", "-pp", help="Pipeline stages."), SIZES]
Dp = Annotated[int, Opt("--data-parallel-size", "-dp", help="Engine replicas, each on its own GPU group."), SIZES]
LoadFormat = Annotated[Optional[str], Opt(help="auto, dummy, safetensors... (presets: dummy)."), v.name("dummy")]
Seed = Annotated[int, Opt(help="Engine and workload seed."), v.non_negative_int("1234")]
EngineArg = Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM argument KEY=VALUE (repeatable)."),
                      v.KeyValue("max_num_seqs=128")]  # an engine argument of every vLLM release supported
Backend = Annotated[Optional[str], Opt(help="mp (one host) or ray (a Ray cluster)."),
                    v.Choice("mp", "ray", message="{flag} {value}: use mp or ray")]
RayAddress = Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT (default $RAY_ADDRESS or local)."),
                       v.Text("10.0.0.1:6379")]
CompilationConfig = Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON."),
                              v.JsonObject('{"pass_config": {"fuse_allreduce_rms": false}}')]
SafeAllreduce = Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce: for hosts without NVSwitch multicast.")]
SweepList = Annotated[Optional[str], Opt(help="Comma list to sweep, or one value.")]  # with its items' validator:
GmuList, KvDtypeList = Annotated[SweepList, GMUS], Annotated[SweepList, KV_DTYPES]
DtypeList, SizeList = Annotated[SweepList, DTYPE_LIST], Annotated[SweepList, v.int_list("1,2,4")]
LengthList, CountList = Annotated[SweepList, v.int_list("2048,8192")], Annotated[SweepList, v.int_list("128,256")]

# ---------------------------------------------------------------- workload
Prompts = Annotated[Optional[str], Opt("--prompts", help="Prompt file: .txt (a line each) or .jsonl."),
                    v.Text("prompts/seed.txt")]
Dataset = Annotated[Optional[tuple[str, str]], Opt("--dataset", help="NAME FILE: sharegpt (ShareGPT JSON: first human "
                                                                     "turn = prompt, first gpt turn's tokens = "
                                                                     "output length) or custom (vllm bench's JSONL)."),
                    v.Pair(v.Choice("sharegpt", "custom", message="{flag} {value}: choose one of {choices} (then the "
                                                                  "file)"), v.Text("prompts/sharegpt-mini.json"))]
DatasetName = Annotated[Optional[str], Opt("--dataset-name", help="vllm bench's name: random (synthetic), or "
                                       "sharegpt / custom with --dataset-path (= --dataset NAME FILE)."),
                        v.Choice(*VLLM_BENCH_DATASETS, message="{flag} {value}: offline-bench reads {choices}")]
DatasetPath = Annotated[Optional[str], Opt("--dataset-path", help="vllm bench's name: the file of --dataset-name; "
                                                                  "alone, the same as --prompts FILE."), PATH]
NumPromptsList = Annotated[Optional[str], Opt("--num-prompts", help="Synthetic: how many (default 100); file: "
                                              "cycle to N. One per --concurrency level, or one for all."),
                          v.int_list("4,20,128", what="positive integers")]
NumPrompts = Annotated[Optional[int], Opt("--num-prompts", help="Synthetic: how many (default 100); file: cycle."),
                       v.positive_int("100")]
InputLen = Annotated[int, Opt(help="Synthetic prompt length in tokens."), v.positive_int("512")]
OutputLen = Annotated[int, Opt(help="Tokens to generate (max_tokens)."), v.positive_int("128")]
RangeRatio = Annotated[float, Opt("--range-ratio", "--random-range-ratio",
                                  help="Synthetic input and output lengths uniform in [len x (1-r), len x (1+r)], "
                                       "as vllm bench's (its own random draws)."), v.share("0.1")]
IgnoreEos = Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos",
                                          help="Always generate output_len (default: on for synthetic).")]
Temperature = Annotated[float, Opt(help="Sampling temperature."),
                        v.Number("0.7", integer=False, lo=0, what="a number >= 0")]
TopP = Annotated[float, Opt(help="Nucleus sampling."), v.fraction("0.95")]
Detokenize = Annotated[bool, Opt("--detokenize/--no-detokenize", " /--disable-detokenize", help="Detokenize outputs.")]
Warmup = Annotated[int, Opt("--warmup", "--num-warmups", help="Untimed warm-up requests."), v.non_negative_int("4")]
Repeats = Annotated[int, Opt(help="Timed passes (mean and 95% CI)."), v.positive_int("3")]
PrefixLen = Annotated[int, Opt(help="Synthetic: shared prefix tokens before each prompt's own --input-len."),
                      v.non_negative_int("256")]
NumPrefixes = Annotated[int, Opt(help="Synthetic: distinct shared prefixes, used in turn."), v.positive_int("4")]
RequestRate = Annotated[Optional[str], Opt(help="Requests/s arriving (seeded gamma gaps, as vllm bench serve); "
                                                "default inf: all at once. A comma list (5,20,50) runs each rate."),
                        RATES]
Burstiness = Annotated[float, Opt(help="Gamma shape of the gaps: 1 = Poisson, < 1 burstier, > 1 more regular."),
                       v.positive_number("0.5", what="positive (1 = Poisson)")]
Goodput = Annotated[Optional[list[str]], Opt(help="SLOs in ms, NAME:MS with NAME ttft, tpot or e2e (repeatable); "
                                                  "a request is good when it meets all."), v.Goodput()]

# ---------------------------------------------------------------- output, serving, hardware
Output = Annotated[Optional[str], Opt("--output", "-o", "--output-json", help="Write the result JSON here "
                                      "(atomically; --output-json: vllm bench's name, this tool's schema)."), OUT]
Verbose = Annotated[bool, Opt("--verbose", "-v", help="Show the engine's log.")]
PlotOut = Annotated[Optional[str], Opt("--plot", help="Also write a PNG here."), v.Text("plot.png")]
Html = Annotated[Optional[str], Opt("--html", help="Also write a self-contained HTML report here (as `report`)."),
                 v.Text("report.html")]
ApiKey = Annotated[Optional[str], Opt("--api-key", help="Bearer key (default: $OPENAI_API_KEY). Never stored.",
                                      show_default=False), KEY]
Timeout = Annotated[float, Opt(help="Seconds to wait for a response."), SECONDS]
GpuHourCost = Annotated[Optional[str], Opt(help="USD per GPU-hour (2.49), or per GPU (h100-sxm=2.49,h200=3.50): "
                                                "$ per million output tokens."), v.GpuPrices("2.49")]
KwhCost = Annotated[Optional[float], Opt(help="USD per kWh: the GPUs' energy $ per million output tokens (NVML)."),
                    v.positive_number("0.12")]
GpuName = Annotated[Optional[str], Opt("--gpu", help="GPU from the built-in table (default: detected)."), GPU]
MeasureGpu = Annotated[bool, Opt(help="Measure bandwidth and bf16 rate on this GPU instead of the datasheet.")]


def Fmt(kind: str) -> object:  # noqa: N802 - reads like the other option aliases
    """--format, listing exactly what `kind`'s renderer can write."""
    formats = formats_of(kind)
    return Annotated[str, Opt("--format", help=f"{', '.join(formats)}."), v.Choice(*formats, varies=True)]
