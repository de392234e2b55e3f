from offline_bench.results.startup import FACT_KEYS, explain_engine_failure, parse_startup
from tests.helpers import FIXTURES, ROOT


def test_h100_log_facts_exact():
    """A start-up log saved from this project's own H100 run (vLLM 0.26, Llama-3.1-8B shape)."""
    facts = parse_startup((FIXTURES / "h100-vllm0.26-llama8b-startup.log").read_text())
    expected = {"vllm_version": "0.26.0", "dtype": "bfloat16", "max_model_len": 4096, "tensor_parallel_size": 1,
                "weights_gib": 15.0, "weights_load_s": 4.08284, "torch_compile_s": 30.22, "kv_cache_gib": 54.26,
                "kv_cache_tokens": 444_528, "max_concurrency": 108.53, "max_concurrency_at_tokens": 4096,
                "cuda_graph_s": 7.0, "cuda_graph_gib": 0.98, "peak_activation_gib": 1.77, "non_torch_gib": 0.22,
                "gpu_total_gib": 79.18, "gpu_memory_utilization": 0.9, "init_engine_s": 181.19,
                "compilation_s": 30.22}
    for key, value in expected.items():
        assert facts[key] == value, key


def test_illustrative_lines_and_ansi():
    log = "\n".join([
        "\x1b[1;36m(EngineCore pid=775)\x1b[0m INFO [x.py:1] Model loading took 14.7 GiB and 6.2 seconds",
        "(EngineCore pid=775) INFO Maximum concurrency for 8,192 tokens per request: 52.11x",
        "(EngineCore pid=775) INFO GPU KV cache size: 426,880 tokens",
        "INFO init engine (profile, create kv cache, warmup model) took 210.5 s (compilation: 41.3 s)",
        "some line nobody knows",
    ])
    f = parse_startup(log)
    assert (f["weights_gib"], f["weights_load_s"]) == (14.7, 6.2)
    assert (f["max_concurrency_at_tokens"], f["max_concurrency"], f["kv_cache_tokens"]) == (8192, 52.11, 426_880)
    assert (f["init_engine_s"], f["compilation_s"]) == (210.5, 41.3)
    assert f["cuda_graph_gib"] is None  # unknown stays unknown
    assert set(FACT_KEYS) <= set(f)


def test_unrelated_log_gives_all_unknown():
    f = parse_startup("hello\nworld\n")
    assert all(f[k] is None for k in FACT_KEYS)


def test_failure_explanations():
    msg = explain_engine_failure("ValueError: No available memory for the cache blocks. Try increasing "
                                 "`gpu_memory_utilization`", RuntimeError("Engine core initialization failed"))
    assert msg.startswith("not enough memory for the KV cache") and "--gpu-memory-utilization" in msg
    other = explain_engine_failure("(EngineCore) ImportError: no module named foo\n", RuntimeError("boom"))
    assert "ImportError: no module named foo" in other and "\n" not in other


def test_the_engine_cores_own_error_wins_over_the_clean_up_errors_logged_after_it():
    log = ("(EngineCore pid=7) ERROR 11-28 00:28:08 [core.py:1330] EngineCore failed to start.\n"
           "(EngineCore pid=7) ERROR 11-28 00:28:08 [core.py:1330] Traceback (most recent call last):\n"
           "(EngineCore pid=7) ERROR 11-28 00:28:08 [core.py:1330]   File \"x.py\", line 1, in f\n"
           "(EngineCore pid=7) ERROR 11-28 00:28:08 [core.py:1330] KeyError: 'the root cause'\n"
           "(EngineCore pid=7) ERROR 11-28 00:28:09 [ray_executor_v2.py:566] Failed to kill actor rank=0\n"
           "(EngineCore pid=7) ERROR 11-28 00:28:09 [ray_executor_v2.py:566] ActorHandleNotFoundError: later\n")
    msg = explain_engine_failure(log, RuntimeError("Engine core initialization failed. See root cause above."))
    assert msg == ("the engine failed to start: KeyError: 'the root cause' (run with --verbose for the engine's "
                   "full log)")


def test_a_tp_group_over_ray_nodes_of_one_host_is_explained_from_the_gpu_log():
    """The engine log of the TP=2 Ray run over two single-GPU Ray nodes of one 4 x H100 host (docs/results): the
    clean-up's ActorHandleNotFoundError came last and was shown; the cause is vLLM's custom all-reduce."""
    log = (ROOT / "docs/results/ray-2node/h100-tp2-ray-engine.log").read_text()
    msg = explain_engine_failure(log, RuntimeError("Engine core initialization failed. See root cause above."))
    assert msg.startswith("vLLM's custom all-reduce looked for GPUs its worker cannot see (IndexError: device_id 1 "
                          "is out of range for assigned_physical_gpu_ids"), msg
    assert msg.endswith("pass --engine-arg disable_custom_all_reduce=true") and "ActorHandle" not in msg


def test_an_out_of_memory_start_says_how_far_it_got():
    """The H100 start-up log cut where each stage ends, then the OOM a start hit (the 70B TP=4 sweep at gmu 0.95 on
    4 x H100 failed so, and its line could not say where)."""
    lines = (FIXTURES / "h100-vllm0.26-llama8b-startup.log").read_text().splitlines()
    oom = ("(EngineCore pid=643) ERROR torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 502.00 MiB. "
           "GPU 0 has a total capacity of 79.18 GiB of which 490.12 MiB is free.")

    def cut_after(text: str) -> str:
        end = next(i for i, line in enumerate(lines) if text in line)
        return explain_engine_failure("\n".join([*lines[:end + 1], oom]), RuntimeError("Engine core failed"))

    assert cut_after("Loading model from scratch").startswith(
        "out of memory while starting the engine, before the weights were loaded (OutOfMemoryError: CUDA out of "
        "memory. Tried to allocate 502.00 MiB.")
    assert cut_after("Model loading took").startswith("out of memory while starting the engine, after loading the "
                                                      "weights (15 GiB a GPU), in the memory profile (")
    kv = cut_after("GPU KV cache size")
    assert kv.startswith("out of memory while starting the engine, after the KV cache was sized (54.26 GiB a GPU), "
                         "while allocating it or capturing CUDA graphs")
    assert kv.endswith(": lower --gpu-memory-utilization, --max-num-seqs or --max-num-batched-tokens, or use a "
                       "smaller model") and "\n" not in kv
    assert cut_after("Graph capturing finished").startswith(
        "out of memory while starting the engine, after capturing CUDA graphs (0.98 GiB), in the warm-up (")
