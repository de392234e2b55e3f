"""Ray without a cluster: which Ray nodes vLLM would take for one host (the cluster itself: tests/e2e)."""


def test_one_host_tp_group_needs_gpu_nodes_that_share_a_host_and_none_holding_the_group():
    from offline_bench.engine.parallel import one_host_tp_group

    def node(host: str, gpus: float, alive: bool = True) -> dict:
        return {"Alive": alive, "NodeManagerHostname": host, "Resources": {"CPU": 8.0, "GPU": gpus}}

    assert one_host_tp_group([node("a", 1), node("a", 1)], 2) == ("a", 2)
    assert one_host_tp_group([node("a", 1), node("a", 1), node("b", 1)], 2) == ("a", 2)
    assert one_host_tp_group([node("a", 1), node("b", 1)], 2) is None  # real hosts: vLLM tells them apart
    assert one_host_tp_group([node("a", 2), node("a", 2)], 2) is None  # one node holds the group
    assert one_host_tp_group([node("a", 1), node("a", 1)], 1) is None
    assert one_host_tp_group([node("a", 1), node("a", 1, alive=False)], 2) is None
    assert one_host_tp_group([node("a", 0), node("a", 0)], 2) is None  # CPU-only nodes: no custom all-reduce
