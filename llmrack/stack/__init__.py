"""The serving stack: compose model and builder, gateway configuration, secrets, smoke checks."""
