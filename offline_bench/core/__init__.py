"""Foundations every layer may use: errors, configs, output-format registry, environment capture, process and log
helpers."""
