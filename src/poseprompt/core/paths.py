"""Where a run's files live: one folder per variant and seed under each kind of output."""
from __future__ import annotations

from pathlib import Path


def seed_dir(root: str | Path, variant: str, seed: int, kind: str = "models") -> Path:
    """``<root>/<kind>/<variant>/seed<seed>`` (kind: models, dvclive/train, reports/eval)."""
    return Path(root) / kind / variant / f"seed{seed}"
