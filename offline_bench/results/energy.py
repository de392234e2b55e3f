"""Energy and cost per token: what a result records of its GPUs' power (core.power's windows) and what its tokens
cost at a GPU-hour or kWh price."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from offline_bench.core.config import Prices
from offline_bench.core.power import PowerSampler, WindowEnergy

J_PER_KWH = 3.6e6
CHECK_WARN_PCT = 5.0  # counter and samples further apart than this: said in the notes


class GpuEnergy(BaseModel):
    index: int  # NVML's index of the GPU
    name: str | None = None
    joules: float | None = None  # per timed pass (mean)
    avg_watts: float | None = None
    peak_watts: float | None = None  # the highest sample inside the timed passes
    idle_watts: float | None = None  # before the engine started
    counter_vs_samples_pct: float | None = None  # integrated samples against the energy counter (+: samples above)


class Energy(BaseModel):
    """The engine's GPUs over the timed passes (summed over GPUs), or why it is unknown."""

    status: Literal["measured", "unknown"] = "unknown"
    reason: str | None = None  # why unknown
    method: str | None = None  # how sampled, and where the joules come from (counter or samples)
    gpus: list[GpuEnergy] = Field(default_factory=list)
    joules_per_pass: list[float] = Field(default_factory=list)
    joules: float | None = None  # mean per timed pass, every GPU
    avg_watts: float | None = None
    peak_watts: float | None = None  # sum over GPUs of each one's peak
    idle_watts: float | None = None
    warmup_joules: float | None = None
    warmup_avg_watts: float | None = None
    joules_per_output_token: float | None = None
    joules_per_total_token: float | None = None  # per prompt + output token
    output_tokens_per_joule: float | None = None
    above_idle_joules_per_output_token: float | None = None  # what the work cost beyond the idle floor
    samples: int | None = None  # inside the timed passes


def unknown(reason: str | None) -> Energy:
    return Energy(reason=reason or "not sampled")


def _pct(a: float | None, b: float | None) -> float | None:
    return round(100.0 * (a / b - 1.0), 3) if a is not None and b else None


def energy_of(sampler: PowerSampler | None, why: str | None, passes: list[WindowEnergy | None],
              warm: WindowEnergy | None, idle: WindowEnergy | None, tokens: list[tuple[int, int]]) -> Energy:
    """The result's energy from each timed pass's window: joules per pass (all GPUs), per token over every pass
    (`tokens`: each pass's (output, prompt + output) tokens; passes may differ without --ignore-eos), per-GPU
    average and peak, and the idle floor."""
    if sampler is None or not passes or any(w is None or w.joules is None for w in passes):
        short = next((w.why for w in passes if w is not None and w.why), None)
        return unknown(why or (sampler.error if sampler else None) or short or "no power samples over the timed "
                       "passes")
    wins = [w for w in passes if w is not None]
    joules = [w.joules or 0.0 for w in wins]
    mean_j = sum(joules) / len(joules)
    secs = sum(w.end - w.start for w in wins) / len(wins)
    gpus = []
    for g, index in enumerate(sampler.indices):
        per = [w.gpus[g] for w in wins]
        gj = sum(p.joules or 0.0 for p in per) / len(per)
        sampled = sum(p.sampled_joules or 0.0 for p in per) / len(per)
        idle_w = idle.gpus[g].avg_watts if idle and idle.gpus else None
        gpus.append(GpuEnergy(index=index, name=sampler.names[g], joules=round(gj, 3),
                              avg_watts=round(gj / secs, 2) if secs else None,
                              peak_watts=max((p.peak_watts for p in per if p.peak_watts is not None), default=None),
                              idle_watts=round(idle_w, 2) if idle_w is not None else None,
                              counter_vs_samples_pct=_pct(sampled, gj) if all(p.method == "counter" for p in per)
                              else None))
    idle_w = sum(g.idle_watts for g in gpus) if all(g.idle_watts is not None for g in gpus) else None
    all_j, out_t, total_t = sum(joules), sum(t[0] for t in tokens), sum(t[1] for t in tokens)
    above = all_j - idle_w * secs * len(wins) if idle_w is not None else None
    return Energy(
        status="measured", method=sampler.method, gpus=gpus, joules_per_pass=[round(j, 3) for j in joules],
        joules=round(mean_j, 3), avg_watts=round(mean_j / secs, 2) if secs else None,
        peak_watts=sum(g.peak_watts or 0.0 for g in gpus), idle_watts=round(idle_w, 2) if idle_w is not None else None,
        warmup_joules=round(warm.joules, 3) if warm and warm.joules is not None else None,
        warmup_avg_watts=round(warm.joules / (warm.end - warm.start), 2)
        if warm and warm.joules is not None and warm.end > warm.start else None,
        joules_per_output_token=all_j / out_t if out_t else None,
        joules_per_total_token=all_j / total_t if total_t else None,
        output_tokens_per_joule=out_t / all_j if all_j else None,
        above_idle_joules_per_output_token=above / out_t if above is not None and out_t else None,
        samples=sum(w.samples for w in wins))


def energy_note(e: Energy) -> str | None:
    if e.status != "measured":
        return None
    return (f"Energy: the engine's GPUs over each timed pass ({e.method}); per token = every pass's joules "
            "over their tokens; idle_watts sampled for 1 s before the engine started (in a sweep or after another "
            "engine, the GPUs may not be back at their floor yet); above-idle = joules less idle_watts x the "
            "passes' time. Start-up and warm-up are not in the per-token figures.")


def check_note(e: Energy) -> str | None:
    """A line when a GPU's integrated samples and its energy counter disagree by more than CHECK_WARN_PCT."""
    off = [g for g in e.gpus if g.counter_vs_samples_pct is not None and abs(g.counter_vs_samples_pct) > CHECK_WARN_PCT]
    if not off:
        return None
    worst = max(off, key=lambda g: abs(g.counter_vs_samples_pct or 0.0))
    return (f"GPU {worst.index}: the power samples integrate to {worst.counter_vs_samples_pct:+.1f}% of the energy "
            "counter; joules are the counter's (short passes hold few samples)")


# ---------------------------------------------------------------- cost
class Cost(BaseModel):
    gpu_hour_usd: float | None = None
    kwh_usd: float | None = None
    gpus: int = 1  # GPU-hours counted per hour (the CPU build: one device)
    usd_per_million_output_tokens: float | None = None  # GPU time: gpus x USD/h / (output tokens/s x 3600) x 1e6
    energy_usd_per_million_output_tokens: float | None = None  # J/token x 1e6 / 3.6e6 x USD/kWh
    reason: str | None = None  # why a figure asked for is unknown


def usd_per_million(gpu_hour_usd: float | None, gpus: int, output_tokens_per_s: float | None) -> float | None:
    """USD per million output tokens in GPU time: GPUs x USD per hour / (output tokens/s x 3600) x 1e6."""
    if gpu_hour_usd is None or not output_tokens_per_s:
        return None
    return gpu_hour_usd * gpus / (output_tokens_per_s * 3600) * 1e6


def cost_of(prices: Prices | None, gpu_name: str | None, gpus: int, output_tokens_per_s: float | None,
            energy: Energy | None) -> Cost | None:
    """USD per million output tokens from GPU time and from energy, for the prices given (None: none given)."""
    if prices is None or (prices.gpu_hour_usd is None and prices.kwh_usd is None):
        return None
    hour, why = prices.gpu_hour(gpu_name)
    gpus = max(1, gpus)
    usd = usd_per_million(hour, gpus, output_tokens_per_s)
    jpt = energy.joules_per_output_token if energy else None
    kwh = prices.kwh_usd
    e_usd = jpt * 1e6 / J_PER_KWH * kwh if kwh is not None and jpt is not None else None
    if kwh is not None and jpt is None:
        why = "; ".join(x for x in (why, f"energy unknown: {energy.reason if energy else 'not sampled'}") if x)
    return Cost(gpu_hour_usd=hour, kwh_usd=kwh, gpus=gpus, usd_per_million_output_tokens=usd,
                energy_usd_per_million_output_tokens=e_usd, reason=why)


def merge(energies: list[Energy | None], output_tokens: int, total_tokens: int) -> Energy:
    """Data-parallel replicas' energies as one (every GPU of every replica), per token of all their tokens."""
    if not energies or any(e is None or e.status != "measured" for e in energies):
        why = next((e.reason for e in energies if e is not None and e.reason), None)
        return unknown(why or "a replica's energy is unknown")
    es = [e for e in energies if e is not None]
    passes = [sum(js) for js in zip(*(e.joules_per_pass for e in es))]
    joules = sum(e.joules or 0.0 for e in es)
    idle = [e.idle_watts for e in es]
    return Energy(status="measured", method=es[0].method, gpus=[g for e in es for g in e.gpus],
                  joules_per_pass=passes, joules=round(joules, 3), avg_watts=sum(e.avg_watts or 0.0 for e in es),
                  peak_watts=sum(e.peak_watts or 0.0 for e in es),
                  idle_watts=sum(idle) if None not in idle else None,  # type: ignore[arg-type]
                  warmup_joules=None, joules_per_output_token=joules / output_tokens if output_tokens else None,
                  joules_per_total_token=joules / total_tokens if total_tokens else None,
                  output_tokens_per_joule=output_tokens / joules if joules else None,
                  above_idle_joules_per_output_token=None, samples=sum(e.samples or 0 for e in es))
