"""One matplotlib style for every figure: two-column paper sizes, print-readable fonts,
colour-blind-safe colours (Okabe-Ito), no chart junk. Figures are written atomically as PNG and PDF.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402

#: Okabe & Ito (2008) palette: distinguishable with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
GREY = "#7F7F7F"
#: Body-part colours for skeletons: left side, right side, centre line.
SIDE_COLOURS = {"left": "#0072B2", "right": "#D55E00", "centre": "#4D4D4D"}

#: Widths in inches of a two-column paper (ICML-like): one column and the full text width.
COLUMN_WIDTH = 3.3
TEXT_WIDTH = 6.9

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.frameon": False, "figure.dpi": 100, "savefig.dpi": 300,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE), "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
    "mathtext.fontset": "dejavusans",
}


@contextmanager
def paper_style():
    with plt.rc_context(RC):
        yield


def variant_colours(variants: list[str]) -> dict[str, str]:
    """A stable colour per variant name (baselines grey/black, the full model blue)."""
    fixed = {"gatfun": GREY, "static": "#000000", "full": PALETTE[0]}
    rest = [c for c in PALETTE[1:] if c not in fixed.values()]
    out, i = {}, 0
    for v in variants:
        if v in fixed:
            out[v] = fixed[v]
        else:
            out[v] = rest[i % len(rest)]
            i += 1
    return out


def save_figure(fig, out_dir: str | Path, name: str, formats=("png", "pdf")) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` atomically; close the figure."""
    out_dir = Path(out_dir)
    paths = []
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(target)
    plt.close(fig)
    return paths
