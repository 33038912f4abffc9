"""One matplotlib style for every figure: two-column paper sizes, print-readable fonts,
colour-blind-safe colours (Okabe-Ito), no chart junk. Figures are written atomically as PNG and PDF.

Conventions shared by every figure module: :func:`new_figure` (constrained layout, widths
:data:`COLUMN_WIDTH` / :data:`TEXT_WIDTH`), :func:`panel_label` for "(a)", "(b)", ...,
:data:`CMAP_DIVERGING` for signed values (eigenvectors, differences), :data:`CMAP_SEQUENTIAL`
for magnitudes (attention), :func:`variant_colours` for variants and :func:`slot_colours` for
prompt slots. Symbols are written in mathtext exactly as in the paper.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path

import matplotlib

# Files only (scripts, tests, the pipeline): no display needed. Inside a Jupyter kernel the inline
# backend stays, so that notebooks show their figures (forcing Agg there silently hid them).
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from poseprompt.core.io import atomic_path  # noqa: E402

# Embedding the font into a PDF, fontTools reads the font file's own creation dates and warns that
# they "seem very low": a fact about the font file, not about the figure, that readers of the
# executed notebooks cannot act on.
logging.getLogger("fontTools.ttLib.tables._h_e_a_d").setLevel(logging.ERROR)

#: Okabe & Ito (2008) palette: distinguishable with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
GREY = "#7F7F7F"
#: Body-part colours for skeletons: left side, right side, centre line.
SIDE_COLOURS = {"left": "#0072B2", "right": "#D55E00", "centre": "#4D4D4D"}

#: Widths in inches of a two-column paper (ICML-like): one column and the full text width.
COLUMN_WIDTH = 3.3
TEXT_WIDTH = 6.9

#: Colour maps: signed values (blue negative, red positive; ColorBrewer RdBu is colour-blind
#: safe) and magnitudes (cividis: perceptually uniform, designed for colour-vision deficiency).
CMAP_DIVERGING = "RdBu_r"
CMAP_SEQUENTIAL = "cividis"
#: Light fills of the architecture diagram: backbone (GAtFuN), new in this work, frozen.
FILL = {"backbone": "#DCE9F5", "new": "#FBE3C4", "frozen": "#EDEDED", "io": "#FFFFFF"}

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


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]


def variant_markers(variants: list[str]) -> dict[str, str]:
    """A marker per variant (in the given order), so that lines differ without colour too."""
    return {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(variants)}


def variant_linestyle(variant: str, baseline: str = "gatfun") -> str:
    """Dashed for the baseline, solid for the others."""
    return "--" if variant == baseline else "-"


def slot_colours(slots) -> dict[str, str]:
    """A colour per prompt slot (person, speed, action, body, arm, leg, ...), in slot order."""
    order = ["#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#0072B2", "#000000"]  # no yellow
    return {s: order[i % len(order)] for i, s in enumerate(slots)}


def new_figure(width: float = COLUMN_WIDTH, height: float = 2.0, **kw):
    """A figure of the given size in inches with constrained layout (call inside paper_style())."""
    return plt.figure(figsize=(width, height), layout="constrained", **kw)


def panel_label(ax, text: str, x: float = -0.02, y: float = 1.0, **kw):
    """Bold panel label such as "(a)" at the top left, outside the axes."""
    return ax.text(x, y, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                   fontweight="bold", **kw)


def save_figure(fig, out_dir: str | Path, name: str, formats=("png", "pdf"), dpi: float | None = None) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` atomically; close the figure.

    ``dpi`` overrides ``savefig.dpi`` (300) for the raster format (``figures.dpi`` of params.yaml).
    The PDF carries no creation date, so that the same figure gives the same bytes (figures/ is
    committed: a re-run that changes nothing shows no diff)."""
    out_dir = Path(out_dir)
    paths = []
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            extra = {"dpi": dpi} if dpi else {}
            if fmt == "pdf":
                extra["metadata"] = {"CreationDate": None}
            fig.savefig(tmp, format=fmt, **extra)
        paths.append(target)
    plt.close(fig)
    return paths
