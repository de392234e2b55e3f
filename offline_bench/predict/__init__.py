"""Predictions without an engine: KV plan, roofline ceilings, the fitted step model and the scheduler replay."""
