"""The only package that drives vLLM: engine start and shutdown, the step loop, probes, parallel set-up."""
