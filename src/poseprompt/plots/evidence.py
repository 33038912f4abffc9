"""Evidence figures: one per claim of the paper, comparing the variants that were trained.

* Figure 5, occlusion: for every suite of kind occlusion (limb groups, a body side, gaps of every
  joint), MPJPE against the fraction of hidden 2D joints and its difference to the baseline, with
  the range seen in training shaded and the mean-pose floor;
* Figure 6, irregular motion: MPJPE against the speed factor, the frame-drop rate (and timestamp
  jitter when evaluated);
* Figure 7, domain shift: MPJPE along every graded synthetic shift (mild to hard, clean at 0) and on
  every real cross-domain set next to the clean test split, with the mean-pose floor;
* Figure 8, attention-based encoding: the pose stream's spatial and temporal attention of the
  baseline and of the proposed model on test clips, their difference, and how much the pose and
  motion streams attend to each prompt slot;
* Figure 9, velocity-driven refinement: the adaptive motion fusion's weight on the motion stream
  per stage and variant, and velocity / acceleration errors per variant;
* Figure 10, training curves: validation MPJPE and training MPJPE per epoch.

Inputs are the parsed ``metrics/<variant>.json`` files (``metrics``), the ``train_summary.json``
files (``summaries``) and loaded checkpoints (``models``), all dicts keyed by variant in the
order of params.yaml. Each function returns ``{"paths": [...], "data": {...}}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from poseprompt.data.format import PoseSequences
from poseprompt.model.lifter import PosePromptLifter
from poseprompt.plots.method import model_inputs
from poseprompt.plots.skeleton import joint_short_names
from poseprompt.plots.style import (CMAP_DIVERGING, CMAP_SEQUENTIAL, COLUMN_WIDTH, GREY, TEXT_WIDTH, new_figure,
                                    paper_style, save_figure, slot_colours, variant_colours, variant_linestyle,
                                    variant_markers)
from poseprompt.plots.tables import (CLEAN_STRENGTH, OCCLUSION_MODE_TEXT, cross_sets, suite_kind, suite_settings,
                                     suite_spec)
from poseprompt.stages.audit import walk_reference

#: Axis label of each suite kind (the strength at which a kind equals the clean split: tables.CLEAN_STRENGTH).
SUITE_AXIS = {"occlusion": "hidden fraction of joints", "speed": "speed factor (resampling)",
              "drop": "frame-drop rate", "jitter": "timestamp jitter (frames)", "noise": "2D noise (pixels)"}


# ---- shared helpers ---------------------------------------------------------------------------------

def clean_reference(m: Mapping) -> dict:
    """The clean test metrics comparable with the suites (flip averaging as in the suites)."""
    return m["test_flip"] if m.get("flip_in_suites") and "test_flip" in m else m["test"]


def clean_std(m: Mapping) -> Mapping:
    """The standard deviations over seeds matching :func:`clean_reference`."""
    std = m.get("std") or {}
    return std.get("test_flip", {}) if m.get("flip_in_suites") and "test_flip" in m else std.get("test", {})


def suite_curve(m: Mapping, suite: str, metric: str = "mpjpe", with_clean: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """(strengths, values) of one suite of one variant, the clean point included, sorted."""
    xs, ys, _ = suite_curve_sd(m, suite, metric, with_clean)
    return xs, ys


def suite_curve_sd(m: Mapping, suite: str, metric: str = "mpjpe", with_clean: bool = True):
    """(strengths, means over seeds, standard deviations over seeds (0 with one seed)); the clean
    point at the strength where the suite's kind equals the clean split."""
    std = (m.get("std") or {}).get("suites", {}).get(suite, {})
    pts = {float(s): (v[metric], (std.get(s) or {}).get(metric) or 0.0)
           for s, v in (m.get("suites", {}).get(suite) or {}).items()}
    kind = suite_kind({"m": m}, suite)
    if with_clean and kind in CLEAN_STRENGTH:
        pts.setdefault(CLEAN_STRENGTH[kind], (clean_reference(m)[metric], clean_std(m).get(metric) or 0.0))
    xs = np.array(sorted(pts))
    return xs, np.array([pts[x][0] for x in xs]), np.array([pts[x][1] for x in xs])


def n_seeds(metrics: Mapping[str, Mapping]) -> int:
    return max(len(m.get("seeds") or [0]) for m in metrics.values())


def spread_note(metrics: Mapping[str, Mapping]) -> str:
    n = n_seeds(metrics)
    return f"mean ± sd over {n} seeds" if n > 1 else "1 seed (no spread)"


def _style(variants: Sequence[str], baseline: str, all_variants: Sequence[str] | None = None):
    order = list(all_variants or variants)
    return variant_colours(order), variant_markers(order), {v: variant_linestyle(v, baseline) for v in order}


def _legend(fig, variants, colours, markers, lines, ncol: int | None = None, marker: bool = True):
    handles = [Line2D([], [], color=colours[v], marker=markers[v] if marker else None, ls=lines[v], label=v)
               for v in variants]
    return fig.legend(handles=handles, loc="outside lower center", ncol=ncol or min(len(variants), 5),
                      handlelength=2.0, columnspacing=1.2)


def _provenance(metrics: Mapping[str, Mapping]) -> str:
    """One line: 2D input, split and seeds (from the metrics files)."""
    first = next(iter(metrics.values()))
    inputs = sorted({str(m.get("input_2d")) for m in metrics.values()})
    return f"{first.get('source')} test split, 2D input {', '.join(inputs)}\n{spread_note(metrics)}"


# ---- Figures 5-7: robustness and domain shift -------------------------------------------------------

def _training_occlusion(train_occlusion: Mapping | None):
    """(max_rate, modes) of the missing-joint exposure in training (``train.occlusion``), or None
    when params.yaml names no ``max_rate`` or the augmentation is off."""
    if not isinstance(train_occlusion, Mapping) or "max_rate" not in train_occlusion:
        return None
    from poseprompt.config.sections import OcclusionConfig
    occ = OcclusionConfig.from_dict(train_occlusion)
    return (occ.max_rate, tuple(occ.modes)) if occ.active else None


def fig5_occlusion(metrics: Mapping[str, Mapping], out_dir: str | Path, baseline: str = "gatfun",
                   name: str = "fig5_occlusion", dpi: float | None = None, all_variants=None,
                   floor: float | None = None, train_occlusion: Mapping | None = None) -> dict:
    """One column per occlusion-kind suite (limb groups, a body side, gaps of every joint, ...): MPJPE
    against the hidden fraction of 2D joints, clean at 0 (top), and its difference to the baseline at
    the same fraction (bottom; below zero: better than the baseline). Shaded: the hidden fractions the
    models saw in training (``train.occlusion``: up to ``max_rate``, on the suites of a trained
    mode); dashed: the mean-pose floor of the test split."""
    suites = list(dict.fromkeys(s for s, _, _ in suite_settings(metrics, list(metrics), ("occlusion",))))
    if not suites:
        raise ValueError("Figure 5: no variant has a suite of kind occlusion (evaluate.suites)")
    variants = [v for v in metrics if any(s in metrics[v].get("suites", {}) for s in suites)]
    colours, markers, lines = _style(variants, baseline, all_variants)
    trained = _training_occlusion(train_occlusion)
    data, shaded = {}, {}
    n = len(suites)
    with paper_style():
        fig = new_figure(COLUMN_WIDTH if n == 1 else TEXT_WIDTH, 3.8)
        axs = np.asarray(fig.subplots(2, n, sharex="col", squeeze=False))
        for c, suite in enumerate(suites):
            top, bottom = axs[0, c], axs[1, c]
            ref = suite_curve(metrics[baseline], suite) if suite in metrics.get(baseline, {}).get("suites", {}) \
                else None
            for v in variants:
                if suite not in metrics[v].get("suites", {}):
                    continue
                xs, ys, sd = suite_curve_sd(metrics[v], suite)
                data[(suite, v)] = (xs, ys)
                kw = dict(color=colours[v], marker=markers[v], ls=lines[v])
                top.errorbar(xs, ys, yerr=sd, capsize=1.5, elinewidth=0.6, **kw)
                if ref is not None:
                    common = np.intersect1d(xs, ref[0])
                    bottom.plot(common, ys[np.isin(xs, common)] - ref[1][np.isin(ref[0], common)], **kw)
            if floor is not None:
                top.axhline(floor, color=GREY, lw=0.8, ls="--", zorder=0)
            bottom.axhline(0, color=GREY, lw=0.6, zorder=0)
            spec = suite_spec(metrics, suite)
            mode = spec.get("mode", "limbs")
            if trained is not None and mode in trained[1]:
                for ax in (top, bottom):
                    ax.axvspan(0.0, trained[0], color="#E5E5E5", lw=0, zorder=-1)
                shaded[suite] = trained[0]
            seen = "" if trained is None or mode in trained[1] else "\n(pattern not seen in training)"
            top.set_title(f"({'abcdefgh'[c]}) {suite}: {OCCLUSION_MODE_TEXT.get(mode, mode)}{seen}", loc="left",
                          fontsize=7)
            bottom.set_xlabel(SUITE_AXIS["occlusion"])
        axs[0, 0].set_ylabel("MPJPE (mm)")
        axs[1, 0].set_ylabel(f"MPJPE $-$ {baseline}'s (mm)")
        handles = [Line2D([], [], color=colours[v], marker=markers[v], ls=lines[v], label=v) for v in variants]
        if floor is not None:
            handles.append(Line2D([], [], color=GREY, lw=0.8, ls="--", label="mean-pose floor"))
        if shaded:
            handles.append(Patch(fc="#E5E5E5", ec="none", label=f"seen in training (≤ {trained[0]:g})"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2 if n == 1 else 4),
                   handlelength=2.0, columnspacing=1.2)
        fig.suptitle(_provenance(metrics), fontsize=7, color=GREY)
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": data, "shaded": shaded}


def fig6_irregular_motion(metrics: Mapping[str, Mapping], out_dir: str | Path, baseline: str = "gatfun",
                          suites: Sequence[str] = ("speed", "drop", "jitter"), name: str = "fig6_irregular_motion",
                          dpi: float | None = None, all_variants=None) -> dict:
    """MPJPE against the speed factor and the frame-drop rate (and timestamp jitter if evaluated)."""
    present = [s for s in suites if any(s in m.get("suites", {}) for m in metrics.values())]
    if not present:
        raise ValueError(f"Figure 6: no variant has any of the suites {list(suites)} (evaluate.suites)")
    variants = [v for v in metrics if any(s in metrics[v].get("suites", {}) for s in present)]
    colours, markers, lines = _style(variants, baseline, all_variants)
    data = {}
    with paper_style():
        fig = new_figure(COLUMN_WIDTH if len(present) <= 2 else TEXT_WIDTH * 0.75, 2.55)
        axs = np.atleast_1d(fig.subplots(1, len(present), sharey=True))
        for i, (ax, suite) in enumerate(zip(axs, present)):
            for v in variants:
                if suite not in metrics[v].get("suites", {}):
                    continue
                xs, ys, sd = suite_curve_sd(metrics[v], suite)
                data[(suite, v)] = (xs, ys)
                ax.errorbar(xs, ys, yerr=sd, capsize=1.5, elinewidth=0.6, color=colours[v], marker=markers[v],
                            ls=lines[v])
            kind = suite_kind(metrics, suite)
            if kind in CLEAN_STRENGTH:
                ax.axvline(CLEAN_STRENGTH[kind], color=GREY, lw=0.6, ls=":", zorder=0)
            ax.set_xlabel(SUITE_AXIS.get(kind, f"{kind} strength"))
            ax.set_title(f"({'abcdefgh'[i]}) {suite}", loc="left")
        axs[0].set_ylabel("MPJPE (mm)")
        _legend(fig, variants, colours, markers, lines, ncol=3 if len(present) <= 2 else 5)
        fig.suptitle(_provenance(metrics) + "; dotted: clean", fontsize=7, color=GREY)
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": data}


def fig7_cross_domain(metrics: Mapping[str, Mapping], out_dir: str | Path, baseline: str = "gatfun",
                      name: str = "fig7_cross_domain", dpi: float | None = None, all_variants=None,
                      floors: Mapping[str, float] | None = None) -> dict:
    """Domain shift. One panel per graded synthetic shift (``shift_<kind>-<strength>``): MPJPE against
    the strength, from mild to hard, with the clean test split at 0; one panel for the real
    cross-domain sets: MPJPE per set next to the clean test split. Mean ± sd over seeds; dashed grey:
    the mean-pose floor of each set (``floors``: set name or ``test`` -> mm), where known."""
    variants = list(metrics)
    sets = cross_sets(metrics, variants)
    if not sets:
        raise ValueError("Figure 7: the metrics files have no cross-domain sets (data/processed/shift_*.npz)")
    floors = dict(floors or {})
    colours, markers, lines = _style(variants, baseline, all_variants)
    graded: dict[str, list[tuple[float, str]]] = {}
    for s, kind, strength in sets:
        if kind is not None:
            graded.setdefault(kind, []).append((strength, s))
    real = [s for s, kind, _ in sets if kind is None]
    panels = list(graded) + (["real"] if real else [])

    def value(m, s):
        if s == "test":
            return clean_reference(m)["mpjpe"], clean_std(m).get("mpjpe") or 0.0
        d = (m.get("cross_domain") or {}).get(s)
        sd = ((m.get("std") or {}).get("cross_domain", {}).get(s) or {}).get("mpjpe") or 0.0
        return (d["mpjpe"], sd) if d else (np.nan, 0.0)

    data: dict = {"graded": {}, "real": {}}
    with paper_style():
        n = len(panels)
        fig = new_figure(COLUMN_WIDTH if n == 1 else TEXT_WIDTH, 2.6)
        axs = np.atleast_1d(fig.subplots(1, n))
        for i, (ax, panel) in enumerate(zip(axs, panels)):
            if panel != "real":
                pts = [(0.0, "test")] + sorted(graded[panel])
                xs = np.array([x for x, _ in pts])
                data["graded"][panel] = {}
                for v in variants:
                    ys, sd = (np.array(a) for a in zip(*(value(metrics[v], s) for _, s in pts)))
                    data["graded"][panel][v] = (xs, ys)
                    ax.errorbar(xs, ys, yerr=sd, capsize=1.5, elinewidth=0.6, color=colours[v], marker=markers[v],
                                ls=lines[v])
                known = [(x, floors[s]) for x, s in pts if s in floors]
                if known:
                    ax.plot(*zip(*known), color=GREY, lw=0.8, ls="--", zorder=0)
                ax.set_xlabel(f"{panel} shift strength (0: clean test)")
                ax.set_title(f"({'abcdefgh'[i]}) {panel}", loc="left")
            else:
                groups = ["test"] + real
                width = 0.8 / len(variants)
                for j, v in enumerate(variants):
                    ys, sd = (np.array(a) for a in zip(*(value(metrics[v], s) for s in groups)))
                    data["real"][v] = ys
                    x = np.arange(len(groups)) - 0.4 + width * (j + 0.5)
                    ax.errorbar(x, ys, yerr=sd, capsize=1.5, elinewidth=0.6, color=colours[v], marker=markers[v],
                                ls="none")
                for g, s in enumerate(groups):
                    if s in floors:
                        ax.hlines(floors[s], g - 0.45, g + 0.45, color=GREY, lw=0.8, ls="--", zorder=0)
                ax.set_xticks(range(len(groups)), ["test (clean)" if s == "test" else s.removeprefix("shift_")
                                                   for s in groups])
                ax.set_xlim(-0.5, len(groups) - 0.5)
                ax.tick_params(axis="x", length=0)
                ax.set_title(f"({'abcdefgh'[i]}) real cross-domain sets", loc="left")
        axs[0].set_ylabel("MPJPE (mm)")
        handles = [Line2D([], [], color=colours[v], marker=markers[v], ls=lines[v], label=v) for v in variants]
        if floors:
            handles.append(Line2D([], [], color=GREY, lw=0.8, ls="--", label="mean-pose floor"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2 if n == 1 else 4),
                   handlelength=2.0, columnspacing=1.2)
        inputs = sorted({str(d.get("input_2d")) for m in metrics.values() for d in m.get("cross_domain", {}).values()})
        fig.suptitle(f"cross-domain sets (shift_*), 2D input {', '.join(inputs)}\nflip averaging "
                     f"{'on' if next(iter(metrics.values())).get('flip_in_suites') else 'off'}; "
                     f"{spread_note(metrics)}", fontsize=7, color=GREY)
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    data["floors"] = floors
    return {"paths": paths, "size_in": size, "data": data}


# ---- Figure 8: attention-based encoding -------------------------------------------------------------

def clip_indices(split: PoseSequences, frames: int, window_kw, count: int) -> list[int]:
    """``count`` test windows spread evenly over the split (stride T)."""
    from poseprompt.data.windows import PoseWindows
    n = len(PoseWindows(split, frames, stride=frames, mode="test", **dict(window_kw or {})))
    return sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))


@torch.no_grad()
def captured(model: PosePromptLifter, split: PoseSequences, window_kw, items: Sequence[int]) -> dict:
    """One forward pass of the test windows ``items`` with the model's probes on."""
    x, texts, _ = model_inputs(split, model.cfg.frames, window_kw, items)
    model.eval()
    with model.capture() as store:
        model(x, texts)
    return store


def slot_attention_mass(mass: np.ndarray, source, model: PosePromptLifter) -> dict[str, np.ndarray]:
    """Per-sample cross-attention mass over the prompt positions (B, S) -> the mean mass per slot,
    split into its word tokens and its context tokens, plus the start and end tokens. The prompt is
    packed per sample (``[start] words_1 ctx_1 ... [end] pad``), so each sample's layout
    (``source``, from the capture) says which position is what."""
    slot, kind = (t.numpy() for t in model.prompts.position_kinds(torch.as_tensor(source)))
    mass = np.asarray(mass, dtype=np.float64)
    K = model.cfg.num_slots
    words, context = np.zeros(K), np.zeros(K)
    for k in range(K):
        words[k] = (mass * ((slot == k) & (kind == 1))).sum(1).mean()
        context[k] = (mass * ((slot == k) & (kind == 2))).sum(1).mean()
    return {"words": words, "context": context, "start": float((mass * (kind == 0)).sum(1).mean()),
            "end": float((mass * (kind == 3)).sum(1).mean())}


def knockout_bars(ax, audits: Mapping, labels: Sequence[tuple[str, str]], variants: Sequence[str], colours,
                  split: str = "test") -> dict:
    """Horizontal bars of knock-out effects (ΔMPJPE with 95 % interval over seeds x clips) for every
    variant that has the component; returns the plotted numbers."""
    rows, data = [], {}
    for label, text in labels:
        for v in variants:
            e = ((audits.get(v) or {}).get("summary", {}).get("knockout", {}).get(label) or {}).get(split) or {}
            iv = e.get("interval")
            if iv:
                rows.append((f"{text} · {v}", v, iv))
                data[(label, v)] = (iv["mean"], iv["lo"], iv["hi"])
    for i, (_, v, iv) in enumerate(rows):
        lo, hi = iv["mean"] - iv["lo"], iv["hi"] - iv["mean"]
        ax.barh(i, iv["mean"], color=colours[v], height=0.7, xerr=[[lo], [hi]] if np.isfinite(lo) else None,
                error_kw=dict(lw=0.6, capsize=1.5), edgecolor="k" if iv.get("significant") else "none", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=6)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("ΔMPJPE when removed (mm), 95 % CI")
    ax.tick_params(axis="y", length=0)
    if not rows:
        ax.text(0.5, 0.5, "no audit", transform=ax.transAxes, ha="center", va="center", fontsize=7, color=GREY)
    return data


def joint_groups(skeleton) -> list[tuple[str, int, int]]:
    """Contiguous runs of joints of one body part ("R leg", "torso", "L arm", ...): (label, first, last)."""
    def group(name: str) -> str:
        n = name.lower()
        side = "L " if n.startswith("left") else "R " if n.startswith("right") else ""
        if any(w in n for w in ("hip", "knee", "ankle", "foot")) and side:
            return side + "leg"
        if any(w in n for w in ("shoulder", "elbow", "wrist", "hand")) and side:
            return side + "arm"
        return "torso"
    out = []
    for j, name in enumerate(skeleton.joints):
        g = group(name)
        if out and out[-1][0] == g:
            out[-1] = (g, out[-1][1], j)
        else:
            out.append((g, j, j))
    short = joint_short_names(skeleton)
    return [(short[a] if a == b else g, a, b) for g, a, b in out]      # a lone joint goes by its name


def _joint_axis(ax, skeleton, axis="both"):
    groups = joint_groups(skeleton)
    ticks = [(a + b) / 2 for _, a, b in groups]
    labels = [g for g, _, _ in groups]
    bounds = [b + 0.5 for _, _, b in groups[:-1]]
    if axis in ("x", "both"):
        ax.set_xticks(ticks, labels, rotation=90)
        for b in bounds:
            ax.axvline(b, color="w", lw=0.5)
    if axis in ("y", "both"):
        ax.set_yticks(ticks, labels)
        for b in bounds:
            ax.axhline(b, color="w", lw=0.5)
    ax.tick_params(length=0)


def fig8_attention_encoding(models: Mapping[str, PosePromptLifter], split: PoseSequences, out_dir: str | Path,
                            baseline: str = "gatfun", proposed: str = "full", window_kw=None, clips: int = 8,
                            layer: int = -1, name: str = "fig8_attention_encoding", dpi: float | None = None,
                            audits: Mapping | None = None, all_variants=None) -> dict:
    """(a) spatial and (b) temporal self-attention of the pose stream (mean over heads and
    ``clips`` test windows) for the baseline, the proposed model (first seed) and their
    difference, in one layer; (c) the share of the pose and motion streams' cross-attention on each
    prompt slot; (d) the component audit of the pose (attention) stream's prompt entries: what
    removing the addition of P' or the cross-attention costs every variant (over all seeds)."""
    base, prop = models[baseline], models[proposed]
    if prop.cross_attn is None:
        raise ValueError(f"Figure 8 needs a proposed variant with cross-attention; {proposed} has none")
    items = clip_indices(split, prop.cfg.frames, window_kw, clips)
    stores = {v: captured(m, split, window_kw, items) for v, m in ((baseline, base), (proposed, prop))}
    depth = prop.cfg.depth
    li = layer % depth
    maps = {v: {k: st[f"layers.{li}.pose_{k}.mixer"]["attn"].numpy() for k in ("spatial", "temporal")}
            for v, st in stores.items()}
    cross = {s: slot_attention_mass(stores[proposed][f"cross_attn.{s}"]["attn_mass"].numpy(),
                                    stores[proposed][""]["prompt_source"], prop) for s in prop.streams}
    sk = prop.skeleton
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 6.2)
        upper, lower = fig.subfigures(2, 1, height_ratios=[3.9, 2.3])
        left, right = upper.subfigures(1, 2, width_ratios=[2.35, 1.0])
        axs = left.subplots(2, 3)
        for r, kind in enumerate(("spatial", "temporal")):
            a, b = maps[baseline][kind], maps[proposed][kind]
            vmax = float(max(a.max(), b.max()))
            im = None
            for c, (mat, title) in enumerate(((a, baseline), (b, proposed))):
                im = axs[r, c].imshow(mat, cmap=CMAP_SEQUENTIAL, vmin=0, vmax=vmax, interpolation="nearest")
                axs[r, c].set_title(f"{title}", fontsize=7)
            cb = left.colorbar(im, ax=axs[r, :2], shrink=0.85, aspect=15, pad=0.02)
            cb.outline.set_visible(False)
            diff = b - a
            lim = float(np.abs(diff).max() or 1.0)
            im2 = axs[r, 2].imshow(diff, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest")
            axs[r, 2].set_title(f"{proposed} $-$ {baseline}", fontsize=7)
            cb = left.colorbar(im2, ax=axs[r, 2], shrink=0.85, aspect=15, pad=0.02)
            cb.outline.set_visible(False)
            for c in range(3):
                ax = axs[r, c]
                if kind == "spatial":
                    _joint_axis(ax, sk, "both" if c == 0 else "x")
                    if c:
                        ax.set_yticks([])
                else:
                    ax.set_xlabel("key frame", fontsize=7)
                    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
                    ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
                    if c:
                        ax.set_yticks([])
                for s in ax.spines.values():
                    s.set_visible(False)
        axs[0, 0].set_ylabel("(a) spatial\nquery joint", fontsize=7)
        axs[1, 0].set_ylabel("(b) temporal\nquery frame", fontsize=7)
        left.suptitle(f"pose-stream self-attention, layer {li + 1} of {depth}\n(mean over heads and "
                      f"{len(items)} test clips)", fontsize=7)
        # (c) slot mass
        ax = right.subplots()
        slots = list(prop.cfg.slots)
        cols = slot_colours(slots)
        streams = list(cross)
        n = len(slots)
        width = 0.8 / max(1, len(streams))
        for i, s in enumerate(streams):
            y = np.arange(n) - 0.4 + width * (i + 0.5)
            w, c = cross[s]["words"], cross[s]["context"]
            ax.barh(y, w, height=width * 0.9, color=[cols[k] for k in slots], edgecolor="k", lw=0.4,
                    hatch="...." if s == "motion" else None)
            ax.barh(y, c, left=w, height=width * 0.9, color="white", edgecolor=[cols[k] for k in slots], lw=0.8,
                    hatch="...." if s == "motion" else None)
        ax.set_yticks(range(n), slots)
        ax.invert_yaxis()
        ax.set_xlabel("share of cross-attention")
        right.suptitle("(c) cross-attention to\nthe prompt, per slot", fontsize=7)
        handles = [Patch(fc=GREY, ec="k", lw=0.4, label="word tokens $\\tilde p_k$"),
                   Patch(fc="white", ec=GREY, lw=0.8, label="context $r_k + \\Delta p_k$")]
        if len(streams) > 1:
            handles += [Patch(fc="white", ec="k", lw=0.4, label=f"top: {streams[0]} stream"),
                        Patch(fc="white", ec="k", lw=0.4, hatch="....", label=f"bottom: {streams[1]} stream")]
        rest = max(cross[s]["start"] + cross[s]["end"] for s in streams)
        handles.append(Patch(fc="none", ec="none", label=f"start/end tokens: {rest:.2f} at most"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.45, -0.22), fontsize=7, handlelength=1.4)
        # (d) knock-outs of the pose-stream entries
        order = list(all_variants or models)
        colours = variant_colours(order)
        ax = lower.subplots()
        ko = knockout_bars(ax, audits or {}, [("add_pose", "w/o P' → pose"), ("xattn_pose", "w/o x-attn pose"),
                                              ("delta_p", "w/o Δp"), ("delta_p_mean", "Δp := its mean"),
                                              ("prompt", "w/o any prompt")],
                           [v for v in order if v != baseline], colours)
        lower.suptitle("(d) influence on attention-based encoding: the trained models with one prompt entry\n"
                       "removed (test clips; outlined: interval excludes 0)", fontsize=7, x=0.01, ha="left")
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size,
            "data": {"maps": maps, "cross": cross, "layer": li, "clips": items, "knockouts": ko}}


# ---- Figure 9: velocity-driven refinement -----------------------------------------------------------

def fusion_weights(store: Mapping, depth: int) -> np.ndarray:
    """Mean weight on the motion stream of each adaptive fusion, in order: layer 1 spatial,
    layer 1 temporal, layer 2 spatial, ..."""
    return np.array([store[f"layers.{i}.fuse_{k}"]["weight_motion"] for i in range(depth)
                     for k in ("spatial", "temporal")])


def fig9_velocity_refinement(models: Mapping[str, PosePromptLifter], metrics: Mapping[str, Mapping],
                             split: PoseSequences, out_dir: str | Path, baseline: str = "gatfun", window_kw=None,
                             clips: int = 8, name: str = "fig9_velocity_refinement", dpi: float | None = None,
                             all_variants=None, audits: Mapping | None = None) -> dict:
    """(a) weight of the motion (velocity) stream in every adaptive fusion, per variant (first seed),
    on test clips; (b) velocity error (MPJVE) and (c) acceleration error per variant (clean test
    split, mean ± sd over seeds); (d) the component audit of the motion stream: what cutting it, or
    removing the prompt's entries into it, costs every variant."""
    variants = [v for v in metrics if v in models]
    colours, markers, lines = _style(variants, baseline, all_variants)
    any_model = models[variants[0]]
    items = clip_indices(split, any_model.cfg.frames, window_kw, clips)
    weights = {v: fusion_weights(captured(models[v], split, window_kw, items), models[v].cfg.depth)
               for v in variants}
    setting = next(iter(metrics.values()))["main"]["setting"]
    errors = {v: (metrics[v][setting]["mpjve"], metrics[v][setting]["accel"]) for v in variants}
    errs_sd = {v: tuple(((metrics[v].get("std") or {}).get(setting) or {}).get(k) or 0.0 for k in ("mpjve", "accel"))
               for v in variants}
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 5.0)
        upper, lower = fig.subfigures(2, 1, height_ratios=[2.6, 2.4])
        axs = upper.subplots(1, 3, width_ratios=[1.35, 1, 1])
        ax = axs[0]
        for v in variants:
            w = weights[v]
            ax.plot(np.arange(len(w)), w, color=colours[v], marker=markers[v], ls=lines[v])
        depth = max(models[v].cfg.depth for v in variants)
        ax.set_xticks(range(2 * depth), [f"{i + 1}{k}" for i in range(depth) for k in ("S", "T")])
        ax.set_xlabel("fusion after stage (layer; S spatial, T temporal)")
        ax.set_ylabel("weight on the motion stream")
        ax.set_title("(a) adaptive motion fusion", loc="left")
        y = np.arange(len(variants))
        for ax, k, title, unit in ((axs[1], 0, "(b) velocity error", "MPJVE (mm/frame)"),
                                   (axs[2], 1, "(c) acceleration error", "mm/frame$^2$")):
            for i, v in enumerate(variants):
                ax.errorbar([errors[v][k]], [i], xerr=[errs_sd[v][k]], marker=markers[v], color=colours[v], ms=5,
                            ls="none", elinewidth=0.6, capsize=1.5)
            ax.axvline(errors[baseline][k] if baseline in errors else np.nan, color=GREY, lw=0.6, ls="--", zorder=0)
            ax.set_yticks(y, variants if k == 0 else [])
            ax.set_ylim(len(variants) - 0.5, -0.5)
            ax.grid(axis="y", color="#EEEEEE", lw=0.6)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", length=0)
            ax.set_xlabel(unit)
            ax.set_title(title, loc="left")
        _legend(upper, variants, colours, markers, lines, ncol=min(len(variants), 5))
        flip = "without" if setting == "test" else "with"
        upper.suptitle(f"{_provenance(metrics)}; dashed: {baseline}; errors {flip} flip averaging; "
                       f"fusion weights on {len(items)} test clips", fontsize=7, color=GREY)
        ax = lower.subplots()
        ko = knockout_bars(ax, audits or {}, [("motion_stream", "motion stream cut"),
                                              ("scale_motion", "w/o P' × motion"), ("xattn_motion", "w/o x-attn motion")],
                           variants, colours)
        lower.suptitle("(d) influence on velocity-driven refinement: the trained models with the motion stream\n"
                       "cut or the prompt's entry into it removed (test clips; outlined: interval excludes 0)",
                       fontsize=7, x=0.01, ha="left")
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": {"weights": weights, "errors": errors, "knockouts": ko}}


# ---- Figure 10: training curves ---------------------------------------------------------------------

def fig10_training_curves(summaries: Mapping[str, Sequence[Mapping]], out_dir: str | Path, baseline: str = "gatfun",
                          name: str = "fig10_training_curves", dpi: float | None = None, all_variants=None) -> dict:
    """Validation MPJPE (a) and training MPJPE (b) per epoch, per variant: the mean over seeds with a
    band of ± one standard deviation (``summaries[v]`` is the list of every seed's summary)."""
    variants = list(summaries)
    colours, markers, lines = _style(variants, baseline, all_variants)
    data = {}
    n = max(len(ss) for ss in summaries.values())
    with paper_style():
        fig = new_figure(COLUMN_WIDTH, 2.55)
        axs = fig.subplots(1, 2, sharey=True)
        for v in variants:
            runs = [s.get("history") or [] for s in summaries[v]]
            E = min(len(h) for h in runs)
            ep = np.array([r["epoch"] for r in runs[0][:E]])
            val = np.array([[r.get("val_mpjpe_mm", np.nan) for r in h[:E]] for h in runs], dtype=float)
            tr = np.array([[r.get("train_mpjpe_mm", np.nan) for r in h[:E]] for h in runs], dtype=float)
            data[v] = {"epoch": ep, "val_mpjpe_mm": val.mean(0), "train_mpjpe_mm": tr.mean(0),
                       "val_sd": val.std(0, ddof=1) if len(runs) > 1 else np.zeros(E)}
            kw = dict(color=colours[v], marker=markers[v], ls=lines[v], ms=2.5)
            for ax, arr in ((axs[0], val), (axs[1], tr)):
                ax.plot(ep, arr.mean(0), **kw)
                if len(runs) > 1:
                    sd = arr.std(0, ddof=1)
                    ax.fill_between(ep, arr.mean(0) - sd, arr.mean(0) + sd, color=colours[v], alpha=0.15, lw=0)
        axs[0].set_ylabel("MPJPE (mm)")
        axs[0].set_title("(a) validation", loc="left")
        axs[1].set_title("(b) training", loc="left")
        for ax in axs:
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
        _legend(fig, variants, colours, markers, lines, ncol=3)
        fig.suptitle(f"mean over {n} seed{'s' if n > 1 else ''}" + (", band: ± sd" if n > 1 else ""), fontsize=7,
                     color=GREY)
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": data}


# ---- Figure 12: the component audit -----------------------------------------------------------------

def fig12_component_audit(audits: Mapping[str, Mapping], out_dir: str | Path, baseline: str = "gatfun",
                          name: str = "fig12_component_audit", dpi: float | None = None, all_variants=None) -> dict:
    """(a) how far each parameter group of the new components moved from initialisation, as a
    multiple of what weight decay alone would have done (log scale; the dashed line is 5x; the red
    diamonds: the same for a pure-noise gradient, :func:`poseprompt.stages.audit.noise_walk`); (b) what
    removing each component from the trained model costs (ΔMPJPE on the test clips, 95 % interval
    over seeds x clips), for every variant that has it."""
    order = list(all_variants or audits)
    variants = [v for v in order if v in audits]
    colours = variant_colours(order)
    groups: list[str] = []
    for v in variants:
        for g in audits[v]["summary"]["movement"]:
            if g not in groups:
                groups.append(g)
    labels: list[str] = []
    for v in variants:
        for k in audits[v]["summary"]["knockout"]:
            if k not in labels:
                labels.append(k)
    moved = [v for v in variants if audits[v]["summary"]["movement"]]
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 2.6 + 0.075 * len(labels) * max(1, len(variants) - 1))
        left, right = fig.subfigures(1, 2, width_ratios=[1.0, 1.25])
        ax = left.subplots()
        width = 0.8 / max(1, len(moved))
        data_m = {}
        for i, v in enumerate(moved):
            mv = audits[v]["summary"]["movement"]
            ys = np.arange(len(groups)) - 0.4 + width * (i + 0.5)
            r = np.array([mv[g]["ratio_to_wd"]["mean"] if g in mv else np.nan for g in groups], dtype=float)
            sd = np.array([mv[g]["ratio_to_wd"].get("std") or 0.0 if g in mv else 0.0 for g in groups], dtype=float)
            data_m[v] = r
            ax.barh(ys, r, height=width * 0.9, color=colours[v], xerr=sd, error_kw=dict(lw=0.5, capsize=1),
                    label=v)
        ref = walk_reference(audits, moved, groups)
        walk = np.array([ref.get(g, np.nan) for g in groups], dtype=float)
        if np.isfinite(walk).any():
            ax.plot(walk, np.arange(len(groups)), ls="none", marker="D", ms=3.5, mew=0.6, mfc="#d62728",
                    mec="k", zorder=5, label="pure-noise walk")
            data_m["noise walk"] = walk
        ax.axvline(5.0, color="k", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_yticks(range(len(groups)), groups, fontsize=6)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.set_xlabel("relative change / weight decay alone")
        ax.tick_params(axis="y", length=0)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.45, -0.075), ncol=3, frameon=False)
        left.suptitle("(a) movement from initialisation", fontsize=8, x=0.02, ha="left")
        ax = right.subplots()
        nice = {k: k.replace("_", " ") for k in labels}
        data_k = knockout_bars(ax, audits, [(k, nice[k]) for k in labels], variants, colours)
        right.suptitle("(b) ΔMPJPE when the component is removed (test clips)", fontsize=8, x=0.02, ha="left")
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": {"movement": data_m, "knockouts": data_k}}
