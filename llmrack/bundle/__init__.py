"""Offline bundle: everything a host with no internet needs, in one directory with a checked manifest.

``build``: building and checking a bundle directory; ``tier``: the bundle a tier needs (images, models,
packages, docker compose v2). Reading a bundle is :mod:`llmrack.manifest`.
"""

from llmrack.bundle.build import MANAGED_DIRS, build_bundle, verify_bundle
from llmrack.bundle.tier import COMPOSE_PACKAGE, COMPOSE_SUITE, build_bundle_for_tier, fetch_compose_deb, tier_images
from llmrack.manifest import FORMAT_VERSION, MANIFEST, read_manifest, sha256_file

__all__ = [
    "COMPOSE_PACKAGE",
    "COMPOSE_SUITE",
    "FORMAT_VERSION",
    "MANAGED_DIRS",
    "MANIFEST",
    "build_bundle",
    "build_bundle_for_tier",
    "fetch_compose_deb",
    "read_manifest",
    "sha256_file",
    "tier_images",
    "verify_bundle",
]
