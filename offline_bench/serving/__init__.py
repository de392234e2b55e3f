"""The serving side: OpenAI HTTP client, /metrics sampling, serve-probe and server launch."""
