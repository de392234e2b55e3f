"""Every option more than one command takes, declared once (an `Annotated` type carrying its typer Option).

Flag groups (`configs`) use them as field types; commands use them as parameter types. An option only one
command takes is declared in that command's signature.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from offline_bench.report.formats import formats_of

Opt = typer.Option

# ---------------------------------------------------------------- engine: vLLM's own names; None: its default
Model = Annotated[str, Opt("--model", help="HF id, local path, or preset:NAME (dummy weights).")]
Tokenizer = Annotated[Optional[str], Opt(help="Tokenizer (default: the model's).")]
Gmu = Annotated[Optional[float], Opt("--gpu-memory-utilization",
                                     help="Fraction of GPU memory for vLLM (default 0.9; on the CPU build, where it "
                                          "is a share of the NUMA node's RAM, the default is a 1 GiB KV cache "
                                          "instead).")]
KvBytes = Annotated[Optional[str], Opt("--kv-cache-memory-bytes",
                                       help="KV cache size per GPU instead of a share of memory, e.g. 64MiB, 2GiB "
                                            "(vLLM then ignores --gpu-memory-utilization).")]
Mml = Annotated[Optional[int], Opt("--max-model-len", help="Context length (default: the model's).")]
MaxNumSeqs = Annotated[Optional[int], Opt(help="Most requests in one batch (vLLM default).")]
Mnbt = Annotated[Optional[int], Opt(help="Token budget per step (vLLM default).")]
Dtype = Annotated[str, Opt(help="Weights/activations dtype.")]
KvDtype = Annotated[str, Opt(help="KV cache dtype: auto, fp8, ...")]
Eager = Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager",
                                      help="No CUDA graphs/compile (default: GPU off, CPU on).")]
Prefix = Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching",
                                       help="Prefix caching (vLLM default: on).")]
Tp = Annotated[int, Opt("--tensor-parallel-size", "-tp", help="GPUs each layer is split over.")]
Pp = Annotated[int, Opt("--pipeline-parallel-size", "-pp", help="Pipeline stages.")]
Dp = Annotated[int, Opt("--data-parallel-size", "-dp", help="Engine replicas, each on its own GPU group.")]
LoadFormat = Annotated[Optional[str], Opt(help="auto, dummy, safetensors... (presets: dummy).")]
Seed = Annotated[int, Opt(help="Engine and workload seed.")]
EngineArg = Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM argument KEY=VALUE (repeatable).")]
Backend = Annotated[Optional[str], Opt(help="mp (one host) or ray (a Ray cluster).")]
RayAddress = Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT (default $RAY_ADDRESS or local).")]
CompilationConfig = Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON.")]
SafeAllreduce = Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce: for hosts without NVSwitch multicast.")]
SweepList = Annotated[Optional[str], Opt(help="Comma list to sweep, or one value.")]

# ---------------------------------------------------------------- workload
Prompts = Annotated[Optional[str], Opt("--prompts", help="Prompt file: .txt (a line each) or .jsonl.")]
Dataset = Annotated[Optional[tuple[str, str]], Opt("--dataset", help="NAME FILE: sharegpt (ShareGPT JSON: first human "
                                                                     "turn = prompt, first gpt turn's tokens = "
                                                                     "output length) or custom (vllm bench's JSONL).")]
NumPromptsList = Annotated[Optional[str], Opt("--num-prompts", help="Synthetic: how many (default 100); file: "
                                              "cycle to N. One per --concurrency level, or one for all.")]
NumPrompts = Annotated[Optional[int], Opt("--num-prompts", help="Synthetic: how many (default 100); file: cycle.")]
InputLen = Annotated[int, Opt(help="Synthetic prompt length in tokens.")]
OutputLen = Annotated[int, Opt(help="Tokens to generate (max_tokens).")]
RangeRatio = Annotated[float, Opt(help="Lengths uniform in len x [1-r, 1+r].")]
IgnoreEos = Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos",
                                          help="Always generate output_len (default: on for synthetic).")]
Temperature = Annotated[float, Opt(help="Sampling temperature.")]
TopP = Annotated[float, Opt(help="Nucleus sampling.")]
Detokenize = Annotated[bool, Opt("--detokenize/--no-detokenize", help="Detokenize outputs.")]
Warmup = Annotated[int, Opt(help="Untimed warm-up requests.")]
Repeats = Annotated[int, Opt(help="Timed passes (mean and 95% CI).")]
PrefixLen = Annotated[int, Opt(help="Synthetic: shared prefix tokens before each prompt's own --input-len.")]
NumPrefixes = Annotated[int, Opt(help="Synthetic: distinct shared prefixes, used in turn.")]
RequestRate = Annotated[Optional[str], Opt(help="Requests/s arriving (seeded gamma gaps, as vllm bench serve); "
                                                "default inf: all at once. A comma list (5,20,50) runs each rate.")]
Burstiness = Annotated[float, Opt(help="Gamma shape of the gaps: 1 = Poisson, < 1 burstier, > 1 more regular.")]
Goodput = Annotated[Optional[list[str]], Opt(help="SLOs in ms, NAME:MS with NAME ttft, tpot or e2e (repeatable); "
                                                  "a request is good when it meets all.")]

# ---------------------------------------------------------------- output, serving, hardware
Output = Annotated[Optional[str], Opt("--output", "-o", help="Write the result JSON here (atomically).")]
Verbose = Annotated[bool, Opt("--verbose", "-v", help="Show the engine's log.")]
PlotOut = Annotated[Optional[str], Opt("--plot", help="Also write a PNG here.")]
Html = Annotated[Optional[str], Opt("--html", help="Also write a self-contained HTML report here (as `report`).")]
ApiKey = Annotated[Optional[str], Opt("--api-key", help="Bearer key (default: $OPENAI_API_KEY). Never stored.",
                                      show_default=False)]
Timeout = Annotated[float, Opt(help="Seconds to wait for a response.")]
GpuName = Annotated[Optional[str], Opt("--gpu", help="GPU from the built-in table (default: detected).")]
MeasureGpu = Annotated[bool, Opt(help="Measure bandwidth and bf16 rate on this GPU instead of the datasheet.")]


def Fmt(kind: str) -> object:  # noqa: N802 - reads like the other option aliases
    """--format, listing exactly what `kind`'s renderer can write."""
    return Annotated[str, Opt("--format", help=f"{', '.join(formats_of(kind))}.")]
