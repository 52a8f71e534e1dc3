"""Regenerate the unit tests' golden files after an intended change: `python scripts/regen_goldens.py`.

The tests only compare what the code renders with these files; writing them is this explicit step, and the
diff (`git diff tests/unit/golden`) is what a reviewer reads. Files are only written, never removed (the stack
goldens sit beside an input fixture, the tiny model's config.json): a golden the code no longer renders makes
its test fail until it is deleted by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit")]

import test_export_k8s  # noqa: E402
import test_monitoring_golden  # noqa: E402
import test_stack_render  # noqa: E402


def main() -> None:
    files = {**test_stack_render.golden_files(), **test_export_k8s.golden_files(),
             **test_monitoring_golden.golden_files()}
    for path, text in sorted(files.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"{len(files)} golden file(s) written under {ROOT / 'tests' / 'unit' / 'golden'}; review git diff")


if __name__ == "__main__":
    main()
