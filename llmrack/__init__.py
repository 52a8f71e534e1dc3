"""llmrack: turn bare Ubuntu GPU servers into a verified, monitored, hardened LLM service."""

__version__ = "0.1.0"
