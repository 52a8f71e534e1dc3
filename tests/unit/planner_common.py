"""What both planner test modules use: the model fixtures, the GPU names, the usable memory of a card."""

from __future__ import annotations

from pathlib import Path

from llmrack.planner import GIB

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
RTX4090 = "NVIDIA GeForce RTX 4090"
H100 = "NVIDIA H100 80GB HBM3"


def usable(gib: float) -> int:
    """Bytes the planner may use on a card of ``gib`` GiB (90 %)."""
    return int(gib * GIB * 0.90)
