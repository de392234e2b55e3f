"""The % of ceiling that `run` reports on a known GPU (`phases` on the real CPU engine: tests/engine)."""

import pytest

from offline_bench.core.gpus import GPUS
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import preset_config
from offline_bench.predict.roofline import achieved, roofline


def test_achieved_matches_roofline():
    info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
    a = achieved(info, GPUS["h100-sxm"], 1.0, 128, 512, prefill_tps=9383.0, decode_tps=151.1)
    ceiling = roofline("", info, GPUS["h100-sxm"], [1], 128 + 256).decode_tokens_per_s_ceiling[1]
    assert a["decode_tokens_per_s_ceiling"] == pytest.approx(ceiling)
    assert a["decode_pct_of_ceiling"] == pytest.approx(100 * 151.1 / ceiling)
    assert a["batch_assumed"] == 1 and a["context_assumed"] == 384
