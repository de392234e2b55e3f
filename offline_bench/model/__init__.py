"""Models: presets with shipped configs, the project's own tokenizer, facts read from a model config."""
