"""Measurements: run and its levels, data parallel, sweeps and their worker, phases and explain-gap runners."""
