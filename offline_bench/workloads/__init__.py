"""Requests: synthetic and file-based workloads, datasets, arrival schedules, named scenarios, measurement levels."""
