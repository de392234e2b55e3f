"""Roofline arithmetic, checked against hand-computed cases."""

import json

import pytest

from offline_bench.core.gpus import GPUS, detect_gpu
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import preset_config, preset_names
from offline_bench.predict.roofline import roofline, weight_bytes_read
from tests.helpers import cli

LLAMA8 = ModelInfo.from_config(preset_config("llama-3.1-8b"))


def test_llama_8b_on_h100_by_hand():
    r = roofline("preset:llama-3.1-8b", LLAMA8, GPUS["h100-sxm"], [1, 64], context=1024)
    assert r.weight_bytes == 16_060_522_496  # 8,030,261,248 parameters x 2 bytes
    assert r.kv_bytes_per_token == 131_072
    # 2 x (8,030,261,248 - 128,256 x 4,096 embedding) + 4 x 32 layers x 1,024 x 32 heads x 128
    assert r.flops_per_token == 15_546_720_256
    assert r.prefill_tokens_per_s_ceiling == pytest.approx(989e12 / 15_546_720_256)
    # batch 1: (16,060,522,496 - 1,050,673,152 + 4,096 + 1,024 x 131,072) bytes / 3.35 TB/s
    step1 = (16_060_522_496 - 1_050_673_152 + 4_096 * 2 + 134_217_728) / 3.35e12
    assert r.decode_step_ms_floor[1] == pytest.approx(step1 * 1000)
    assert r.decode_tokens_per_s_ceiling[1] == pytest.approx(1 / step1)
    step64 = (16_060_522_496 - 1_050_673_152 + 64 * 4_096 * 2 + 64 * 134_217_728) / 3.35e12
    assert r.decode_tokens_per_s_ceiling[64] == pytest.approx(64 / step64)


def test_tensor_parallel_aggregates_bandwidth():
    one = roofline("m", LLAMA8, GPUS["h100-sxm"], [1], 1024)
    two = roofline("m", LLAMA8, GPUS["h100-sxm"], [1], 1024, num_gpus=2)
    assert two.decode_tokens_per_s_ceiling[1] == pytest.approx(2 * one.decode_tokens_per_s_ceiling[1])


def test_moe_reads_only_routed_experts():
    info = ModelInfo.from_config(preset_config("qwen3-30b-a3b"))
    assert info.params == pytest.approx(30.53e9, rel=1e-3) and info.active_params == pytest.approx(3.35e9, rel=1e-2)
    per_expert = 3 * 2048 * 768
    # batch 1 routes to 8 of 128 experts per layer: the active parameters, less the embedding lookup
    assert weight_bytes_read(info, 1, 2) == (info.active_params - 151_936 * 2048 + 2048) * 2
    # a large batch touches nearly every expert
    full = (info.params - 151_936 * 2048 + 4096 * 2048) * 2
    assert weight_bytes_read(info, 4096, 2) == pytest.approx(full, rel=1e-6)
    assert weight_bytes_read(info, 8, 2) > weight_bytes_read(info, 1, 2) + 40 * 8 * per_expert * 2


def test_presets_published_sizes():
    expected = {"llama-3.1-70b": 70.55e9, "mistral-7b-v0.3": 7.248e9, "qwen2.5-7b": 7.616e9, "qwen3-8b": 8.19e9}
    for name, params in expected.items():
        assert ModelInfo.from_config(preset_config(name)).params == pytest.approx(params, rel=2e-3), name
    assert ModelInfo.from_config(preset_config("llama-3.1-70b")).kv_bytes_per_token() == 327_680
    assert len(preset_names()) == 7


def test_gpu_detection():
    assert detect_gpu("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert detect_gpu("NVIDIA H100 PCIe").name == "h100-pcie"
    assert detect_gpu("NVIDIA H200").name == "h200"
    assert detect_gpu("NVIDIA A100-SXM4-40GB").name == "a100-40gb"
    assert detect_gpu("NVIDIA GeForce RTX 4090").name == "rtx-4090"
    assert detect_gpu("AMD EPYC") is None


def test_roofline_cli_json(capsys):
    rc, out, err = cli(capsys, "roofline", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm", "--batch-sizes",
                       "1,8", "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    for key in ("weight_bytes", "kv_bytes_per_token", "flops_per_token", "decode_tokens_per_s_ceiling",
                "prefill_tokens_per_s_ceiling"):
        assert key in d
    assert set(d["decode_tokens_per_s_ceiling"]) == {"1", "8"}
    rc, _, err = cli(capsys, "roofline", "--gpu", "tpu-v9")
    assert rc == 2 and "unknown GPU 'tpu-v9'" in err


def test_decode_floor_turns_compute_bound_at_large_batches():
    info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
    gpu = GPUS["h100-sxm"]
    r = roofline("", info, gpu, [1, 4096], 128)
    assert r.decode_bound == {1: "memory", 4096: "compute"}
    # 4096 tokens x 15.3 GFLOP at 989 TFLOP/s (63.4 ms) outweigh 16.06 GB + 4096 x 128 x 128 KiB at 3.35 TB/s
    assert r.decode_tokens_per_s_ceiling[4096] == pytest.approx(gpu.bf16_dense_tflops * 1e12 / r.flops_per_token)
    assert r.decode_tokens_per_s_ceiling[1] < gpu.bf16_dense_tflops * 1e12 / r.flops_per_token
