"""The stack's facts now live in :mod:`llmrack.facts.stack`; this name stays for the deploy files."""

from llmrack.facts.stack import ComposeDrift, DockerImageIds, HostSecretFiles

__all__ = ["ComposeDrift", "DockerImageIds", "HostSecretFiles"]
