"""The paper's tables, written as Markdown (``.md``) and LaTeX booktabs (``.tex``) from the metrics files.

Every table states its data: which split, which 2D input, the seeds, and whether the ground-truth
action label was given to each model (read from ``metrics/variants/<variant>.json``; per variant
where it differs). Every number is the mean over the training seeds with its standard deviation
(``mean ± sd``; with one seed the table says "1 seed" and shows no spread). Comparisons are paired
differences with a 95 % interval over seeds and test clips (:mod:`poseprompt.core.stats`), against two
baselines: the no-prompt baseline (``figures.baseline``, gatfun) and the capacity-matched one
(``figures.matched_baseline``, gatfun-wide: no prompt, widened to the prompted model's trainable
parameter count) when it was trained; a Δ is **bold only where its interval excludes zero**.
Variants of a table that were not trained (not in params.yaml ``variants``) are left out and named
in a note, so a partial run still gives every file.

Tables: ``main_results``, ``ablation``, ``injection``, ``robustness`` and ``cross_domain`` (long
format: one row per setting and variant), ``audit`` (knock-outs), ``audit_movement``, ``cost``; the
claims table is :mod:`poseprompt.plots.claims`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from poseprompt.core.io import write_text
from poseprompt.core.stats import INTERVAL_NOTE, Interval, crossed_interval


@dataclass(frozen=True)
class Cell:
    """A table value: mean over seeds, standard deviation (None with one seed), and whether it
    differs significantly from the baseline's value in the same setting (bold)."""
    mean: float | None
    std: float | None = None
    bold: bool = False
    digits: int = 1

    def text(self) -> str:
        if self.mean is None or (isinstance(self.mean, float) and math.isnan(self.mean)):
            return "–"
        t = f"{self.mean:.{self.digits}f}"
        return t + (f" ± {self.std:.{self.digits}f}" if self.std is not None else "")


@dataclass(frozen=True)
class Delta:
    """A paired difference to the baseline with its 95 % interval (bold when it excludes zero)."""
    iv: Interval | None

    @property
    def bold(self) -> bool:
        return bool(self.iv is not None and self.iv.significant)

    def text(self) -> str:
        if self.iv is None or not math.isfinite(self.iv.mean):
            return "–"
        if not math.isfinite(self.iv.lo):
            return f"{self.iv.mean:+.1f}"
        return f"{self.iv.mean:+.1f} [{self.iv.lo:+.1f}, {self.iv.hi:+.1f}]"


@dataclass(frozen=True)
class Column:
    key: str                       # key in the row dicts
    md: str                        # Markdown header
    tex: str | None = None         # LaTeX header (default: escaped md)
    fmt: Callable[[Any], str] | None = None
    align: str = "r"


def fmt_mm(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def fmt_count(n) -> str:
    if n is None:
        return "–"
    n = float(n)
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def fmt_signed(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1f}"


def tex_escape(s: str) -> str:
    out = []
    for ch in str(s):
        out.append({"_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                    "–": "--", "×": r"$\times$", "—": "---", "²": r"$^2$", "Δ": r"$\Delta$",
                    "−": "$-$"}.get(ch, ch))
    return "".join(out)


def _md_escape(s: str) -> str:
    return str(s).replace("|", r"\|")


def render(name: str, caption: str, columns: Sequence[Column], rows: Sequence[Mapping],
           notes: Sequence[str], wide: bool | None = None) -> tuple[str, str]:
    """(Markdown, LaTeX) of one table. Values that are :class:`Cell` or :class:`Delta` carry their own
    text and bold flag; other values go through the column's ``fmt``. A column aligned ``p{..}`` is a
    LaTeX paragraph column (left-aligned in Markdown); ``wide`` spans both columns of the paper (None:
    when there are more than 6 columns)."""
    def text(c: Column, v) -> str:
        return v.text() if isinstance(v, (Cell, Delta)) else (c.fmt or str)(v)
    cells = [[text(c, r.get(c.key)) for c in columns] for r in rows]
    bold = [[bool(getattr(r.get(c.key), "bold", False)) for c in columns] for r in rows]
    md = [f"**Table ({name}).** {caption}", ""]
    md.append("| " + " | ".join(_md_escape(c.md) for c in columns) + " |")
    md.append("|" + "|".join(":---" if c.align == "l" or c.align.startswith("p") else "---:" for c in columns) + "|")
    for row, b in zip(cells, bold):
        md.append("| " + " | ".join(f"**{_md_escape(x)}**" if bb else _md_escape(x) for x, bb in zip(row, b)) + " |")
    if not rows:
        md.append("| " + " | ".join("–" for _ in columns) + " |")
    md.append("")
    md += [f"{n}  " for n in notes]
    env = "table*" if (len(columns) > 6 if wide is None else wide) else "table"   # wide: both columns
    tex = ["% generated by poseprompt.plots.tables (the figures stage): do not edit by hand",
           "% needs \\usepackage{booktabs,graphicx}",
           rf"\begin{{{env}}}[t]", r"\centering", rf"\caption{{{tex_escape(caption)}}}", rf"\label{{tab:{name}}}",
           r"\small", r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
           rf"\begin{{tabular}}{{{''.join(c.align for c in columns)}}}", r"\toprule",
           " & ".join(c.tex if c.tex is not None else tex_escape(c.md) for c in columns) + r" \\", r"\midrule"]
    for row, b in zip(cells, bold):
        tex.append(" & ".join(rf"\textbf{{{tex_escape(x)}}}" if bb else tex_escape(x) for x, bb in zip(row, b))
                   + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}}"]
    if notes:
        tex.append(r"\par\smallskip\parbox{\linewidth}{\footnotesize " + " ".join(tex_escape(n) for n in notes) + "}")
    tex.append(rf"\end{{{env}}}")
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"


def write_table(out_dir: str | Path, name: str, caption: str, columns, rows, notes,
                wide: bool | None = None) -> list[Path]:
    md, tex = render(name, caption, columns, rows, notes, wide)
    out_dir = Path(out_dir)
    return [write_text(out_dir / f"{name}.md", md), write_text(out_dir / f"{name}.tex", tex)]


# ---- provenance -------------------------------------------------------------------------------------

def label_status(metrics: Mapping, config: Mapping | None) -> str:
    """How the action slot was filled for one variant: "yes", "no (generic)", "no text" (``prompt:
    direct``: the pose context mapped to P' without text) or "no prompt"."""
    prompt = (config or {}).get("prompt")
    if prompt == "direct":
        return "no text"
    no_text = metrics.get("parameters", {}).get("text_encoder") == 0
    if prompt == "none" or no_text:
        return "no prompt"
    if metrics.get("action_label_given"):
        return "yes"
    return "no (generic)"


def data_notes(metrics: Mapping[str, Mapping], configs: Mapping[str, Mapping], variants: Sequence[str],
               split_key: str = "split") -> list[str]:
    """The notes every table carries: split, 2D input and the action label per variant."""
    ms = [metrics[v] for v in variants]
    if not ms:
        return []
    sources = sorted({str(m.get("source")) for m in ms})
    inputs = sorted({str(m.get("input_2d")) for m in ms})
    splits = sorted({str(m.get(split_key)) for m in ms})
    notes = [f"Data: {', '.join(splits)} split of {', '.join(sources)}; 2D input: {', '.join(inputs)}."]
    groups: dict[str, list[str]] = {}
    for v in variants:
        groups.setdefault(label_status(metrics[v], configs.get(v)), []).append(v)
    if len(groups) == 1:
        status = next(iter(groups))
        text = {"yes": "given to every model", "no (generic)": "not given (generic action text)",
                "no text": "not used (no text: prompt direct)", "no prompt": "not used (no prompt)"}[status]
        notes.append(f"Ground-truth action label: {text}.")
    else:
        parts = [f"{status}: {', '.join(vs)}" for status, vs in groups.items()]
        notes.append("Ground-truth action label given to the model — " + "; ".join(parts) + ".")
    if any(metrics[v].get("style_label_given") for v in variants):
        notes.append("Style label given (person slot): " +
                     ", ".join(v for v in variants if metrics[v].get("style_label_given")) + ".")
    return notes


def _suite_flip(metrics, variants) -> str:
    flip = any(metrics[v].get("flip_in_suites") for v in variants)
    return "with test-time flip averaging" if flip else "without test-time flip averaging"


def _flip(on: bool) -> str:
    return f"{'with' if on else 'without'} test-time flip averaging"


def _missing_note(wanted: Sequence[str], present: Sequence[str]) -> list[str]:
    missing = [v for v in wanted if v not in present]
    return [f"Not trained in this run (not in params.yaml variants): {', '.join(missing)}."] if missing else []


# ---- values with their spread ---------------------------------------------------------------------

def _get(tree: Mapping | None, path: Sequence[str]):
    for k in path:
        if not isinstance(tree, Mapping) or k not in tree:
            return None
        tree = tree[k]
    return tree


@dataclass
class Results:
    """What every table reads: each variant's results over seeds (``metrics``), configurations,
    per-clip errors stacked over seeds (``clips[v][setting]`` (S, W)), the baseline and the
    capacity-matched baseline (``matched``; None: none configured)."""
    metrics: Mapping[str, Mapping]
    configs: Mapping[str, Mapping]
    clips: Mapping[str, Mapping[str, Any]]
    baseline: str
    matched: str | None = None

    @property
    def baselines(self) -> list[str]:
        """The baselines every difference is reported against: the baseline, and the matched one
        when it was trained in this run."""
        out = [self.baseline]
        if self.matched and self.matched in self.metrics and self.matched != self.baseline:
            out.append(self.matched)
        return out

    def paired(self, a: str, b: str, setting: str) -> Interval | None:
        """Paired difference ``a - b`` in ``setting`` over seeds x clips (None if not comparable: the
        same variant, a setting missing, other seeds or other clips)."""
        x, y = _get(self.clips, (a, setting)), _get(self.clips, (b, setting))
        if a == b or x is None or y is None or x.shape != y.shape or x.shape[1] < 2:
            return None
        return crossed_interval(x - y)

    def interval(self, v: str, setting: str, against: str | None = None) -> Interval | None:
        """Paired difference ``v - against`` (default: the baseline) in ``setting``."""
        return self.paired(v, against or self.baseline, setting)

    def cell(self, v: str, path: Sequence[str], setting: str | None = None, digits: int = 1) -> Cell:
        m = self.metrics.get(v) or {}
        mean = _get(m, path)
        std = _get(m.get("std") or {}, path)
        iv = self.interval(v, setting) if setting else None
        return Cell(float(mean) if isinstance(mean, (int, float)) else None, std, bool(iv and iv.significant), digits)

    def delta(self, v: str, setting: str, against: str | None = None) -> Delta:
        return Delta(self.interval(v, setting, against))

    def deltas(self, v: str, setting: str) -> dict[str, Delta]:
        """Row entries ``delta:<baseline>``: the paired difference to every baseline."""
        return {f"delta:{b}": self.delta(v, setting, b) for b in self.baselines}

    def delta_columns(self, what: str = "ΔMPJPE") -> list[Column]:
        return [Column(f"delta:{b}", f"{what} vs {b} [95 % CI]",
                       tex=tex_escape(f"{what} vs {b}") + r" [95\,\% CI]") for b in self.baselines]

    def baselines_note(self) -> list[str]:
        """What the Δ columns compare with (the matched baseline's size, or that it is absent)."""
        def size(v):
            n = _get(self.metrics.get(v), ("parameters", "trainable"))
            return f"{fmt_count(n)} trainable parameters" if n is not None else "trainable parameters unknown"
        text = f"Δ columns: paired difference to {self.baseline} (no prompt, {size(self.baseline)})"
        if len(self.baselines) > 1:
            text += (f" and to {self.matched}, the capacity-matched baseline (no prompt, widened to the "
                     f"prompted model's trainable parameter count: {size(self.matched)})")
        elif self.matched and self.matched != self.baseline:
            text += (f"; the capacity-matched baseline {self.matched} (figures.matched_baseline) was not "
                     f"trained in this run")
        return [text + "; negative: lower error than the baseline."]

    def seeds_note(self, variants: Sequence[str]) -> str:
        seeds = sorted({tuple(self.metrics[v].get("seeds") or []) for v in variants})
        if len(seeds) != 1:
            return "Seeds differ between variants: " + "; ".join(
                f"{v}: {self.metrics[v].get('seeds')}" for v in variants) + "."
        s = list(seeds[0])
        if len(s) <= 1:
            return (f"1 seed ({s[0] if s else '?'}): no spread over seeds is shown; intervals are over test clips "
                    f"only.")
        return (f"Mean ± standard deviation over {len(s)} training seeds ({', '.join(map(str, s))}); the data and "
                f"its split are the same for every seed.")

    def notes(self, variants: Sequence[str]) -> list[str]:
        return data_notes(self.metrics, self.configs, variants) + [self.seeds_note(variants), INTERVAL_NOTE]


def _main(m: Mapping) -> str:
    return m["main"]["setting"]


def clean_setting(m: Mapping) -> str:
    """The clean test setting comparable with the suites and cross-domain sets (flip averaging as
    in them)."""
    return "test_flip" if m.get("flip_in_suites") and "test_flip" in m else "test"


# ---- suites and cross-domain sets -------------------------------------------------------------------

#: Perturbation kinds in table order, what their strength means, and the strength that is the clean split.
SUITE_KINDS = ("occlusion", "speed", "drop", "jitter", "noise")
KIND_TEXT = {"occlusion": "fraction of 2D joints hidden", "speed": "temporal resampling factor (input and target)",
             "drop": "frame-drop rate", "jitter": "timestamp noise (frames)", "noise": "2D noise (pixels)"}
CLEAN_STRENGTH = {"occlusion": 0.0, "speed": 1.0, "drop": 0.0, "jitter": 0.0, "noise": 0.0}
#: Kinds whose perturbed split has the clean split's windows (the same clips, so per-clip pairs).
SAME_WINDOWS = ("occlusion", "noise", "jitter")
OCCLUSION_MODE_TEXT = {"joints": "single joints", "limbs": "limb groups", "parts": "body parts",
                       "side": "a whole body side", "all": "every joint"}


def suite_spec(metrics: Mapping[str, Mapping], name: str) -> dict:
    """The recorded entry of suite ``name`` (``suite_specs``, from the first variant that has it);
    ``kind`` falls back to the name for metrics written before suites named their kind."""
    for m in metrics.values():
        spec = (m.get("suite_specs") or {}).get(name)
        if spec:
            return {"kind": name, **spec}
    return {"kind": name}


def suite_kind(metrics: Mapping[str, Mapping], name: str) -> str:
    return suite_spec(metrics, name)["kind"]


def suite_settings(metrics: Mapping[str, Mapping], variants: Sequence[str], kinds: Sequence[str] | None = None
                   ) -> list[tuple[str, str, str]]:
    """(suite, kind, strength key) of every evaluated suite strength, in table order: kinds in
    :data:`SUITE_KINDS` order (others after), suites in the order first met, strengths ascending;
    ``kinds`` keeps those kinds only."""
    found: dict[str, list[str]] = {}
    for v in variants:
        for s, per in (metrics[v].get("suites") or {}).items():
            found.setdefault(s, [])
            found[s] += [st for st in per if st not in found[s]]
    rank = {k: i for i, k in enumerate(SUITE_KINDS)}
    names = sorted(found, key=lambda s: rank.get(suite_kind(metrics, s), len(rank)))
    out = []
    for s in names:
        k = suite_kind(metrics, s)
        if kinds is None or k in kinds:
            out += [(s, k, st) for st in sorted(found[s], key=float)]
    return out


def suite_label(name: str, kind: str, strength: str) -> str:
    return f"{name} ×{float(strength):g}" if kind == "speed" else f"{name} {float(strength):g}"


def suite_description(metrics: Mapping[str, Mapping], name: str) -> str:
    spec = suite_spec(metrics, name)
    kind = spec["kind"]
    text = f"{name}: {KIND_TEXT.get(kind, kind)}"
    if kind == "occlusion":
        extra = []
        if spec.get("mode"):
            extra.append(OCCLUSION_MODE_TEXT.get(spec["mode"], str(spec["mode"])))
        if spec.get("span"):
            a, b = spec["span"]
            extra.append(f"events of {a}–{b} frames")
        if extra:
            text += f" ({', '.join(extra)})"
    elif kind != name:
        text += f" (kind {kind})"
    return text


_GRADED = re.compile(r"^shift_(?P<kind>.+)-(?P<strength>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


def cross_sets(metrics: Mapping[str, Mapping], variants: Sequence[str]) -> list[tuple[str, str | None, float | None]]:
    """(set, shift kind, strength) of every cross-domain set: graded synthetic shifts
    (``shift_<kind>-<strength>``, or a set whose metrics carry ``shift`` and ``shift_strength``) first,
    by kind and strength, then the real sets (kind and strength None) by name."""
    info: dict[str, tuple[str | None, float | None]] = {}
    for v in variants:
        for s, d in (metrics[v].get("cross_domain") or {}).items():
            if s in info:
                continue
            kind, strength = d.get("shift"), d.get("shift_strength")
            m = _GRADED.match(s)
            if (kind is None or strength is None) and m:
                kind, strength = m["kind"], float(m["strength"])
            info[s] = (kind, float(strength)) if kind is not None and strength is not None else (None, None)
    graded = sorted((s for s, (k, _) in info.items() if k is not None), key=lambda s: (info[s][0], info[s][1]))
    real = sorted(s for s, (k, _) in info.items() if k is None)
    return [(s, *info[s]) for s in graded + real]


def set_label(name: str, kind: str | None, strength: float | None) -> str:
    return f"{kind} {strength:g}" if kind is not None else name.removeprefix("shift_")


# ---- the tables -------------------------------------------------------------------------------------

def _label_col():
    return Column("label", "GT action", r"GT action", align="l")


def main_results(R: Results, variants, out_dir, floor: float | None = None) -> tuple[list[Path], list[dict]]:
    rows = []
    for v in variants:
        m = R.metrics[v]
        main = _main(m)
        rows.append({"variant": v, "label": label_status(m, R.configs.get(v)),
                     "mpjpe": R.cell(v, ("test", "mpjpe")), "p_mpjpe": R.cell(v, ("test", "p_mpjpe")),
                     "mpjpe_f": R.cell(v, ("test_flip", "mpjpe")),
                     "p_mpjpe_f": R.cell(v, ("test_flip", "p_mpjpe")),
                     "mpjve": R.cell(v, (main, "mpjve")), "accel": R.cell(v, (main, "accel")),
                     **R.deltas(v, main), "trainable": m["parameters"]["trainable"]})
    setting = "with" if _main(R.metrics[variants[0]]) == "test_flip" else "without"
    cols = [Column("variant", "Variant", align="l"), _label_col(),
            Column("mpjpe", "MPJPE"), Column("p_mpjpe", "P-MPJPE"),
            Column("mpjpe_f", "MPJPE (flip)"), Column("p_mpjpe_f", "P-MPJPE (flip)"),
            Column("mpjve", "MPJVE"), Column("accel", "Accel.")] + R.delta_columns() + [
            Column("trainable", "Trainable params", fmt=fmt_count)]
    notes = R.notes(variants) + R.baselines_note() + [
        f"Errors in mm (MPJVE in mm/frame, Accel. in mm/frame²); MPJVE, Accel. and Δ {setting} test-time flip "
        f"averaging; '(flip)': with test-time flip averaging."]
    if floor is not None:
        notes.append(f"Mean-pose floor of this test split (every frame predicted as the training split's mean "
                     f"pose): MPJPE {floor:.1f} mm.")
    caption = "Main results on the test split."
    return write_table(out_dir, "main_results", caption, cols, rows, notes), rows


def _switches(configs: Mapping, v: str) -> dict:
    c = configs.get(v) or {}
    prompt = c.get("prompt", "?")
    pools = prompt in ("adaptive", "direct")          # both pool the pose context z
    return {"prompt": prompt, "spatial": c.get("spatial_pool", "?") if pools else "–",
            "temporal": c.get("temporal_pool", "?") if pools else "–",
            "context": c.get("context_from", "embedding") if pools else "–",
            "action_text": c.get("action_text", "?") if prompt not in ("none", "direct") else "–",
            "inject": {"encoding": "pose (attention)", "refinement": "motion (velocity)",
                       "both": "both streams"}.get(c.get("inject"), "?") if prompt != "none" else "–"}


def _occ_max(m: Mapping) -> str | None:
    """The largest strength of the suite named ``occlusion`` (limb groups, as in the tables' column)."""
    occ = m.get("suites", {}).get("occlusion") or {}
    return max(occ, key=float) if occ else None


def ablation(R: Results, variants, wanted, out_dir) -> tuple[list[Path], list[dict]]:
    present = [v for v in wanted if v in R.metrics]
    rows = []
    strength = None
    for v in present:
        m = R.metrics[v]
        main = _main(m)
        strength = _occ_max(m) or strength
        rows.append({"variant": v, **_switches(R.configs, v), "label": label_status(m, R.configs.get(v)),
                     "mpjpe": R.cell(v, (main, "mpjpe")), "p_mpjpe": R.cell(v, (main, "p_mpjpe")),
                     "mpjve": R.cell(v, (main, "mpjve")), **R.deltas(v, main),
                     "occ": R.cell(v, ("suites", "occlusion", strength, "mpjpe"), f"suite/occlusion/{strength}")
                     if strength else None})
    cols = [Column("variant", "Variant", align="l"), Column("prompt", "Prompt", align="l"),
            Column("spatial", "Spatial pool", align="l"), Column("temporal", "Temporal pool", align="l"),
            Column("context", "Context from", align="l"), Column("action_text", "Action text", align="l"),
            Column("mpjpe", "MPJPE"), Column("p_mpjpe", "P-MPJPE"), Column("mpjve", "MPJVE")] + \
        R.delta_columns() + [
            Column("occ", f"MPJPE occl. {float(strength):g}" if strength is not None else "MPJPE occl.", fmt=fmt_mm)]
    notes = R.notes(present) + R.baselines_note() + [
        f"Errors in mm, {_flip(_main(R.metrics[present[0]]) == 'test_flip' if present else False)}; "
        f"'occl.': MPJPE with that fraction of 2D joints hidden (robustness suite 'occlusion', "
        f"{_suite_flip(R.metrics, present)}; bold: differs from {R.baseline}, paired interval over seeds x clips). "
        f"Prompt 'direct': the pooled pose context mapped to P' by a small network, no text tower. "
        f"Action text 'label': the ground-truth action word fills the action slot; 'generic': the word 'action' "
        f"for every clip. Context from 'layer1': pooled from the pose stream after the first layer."] + \
        _missing_note(wanted, present)
    return write_table(out_dir, "ablation", "Ablation of every component of pose-adaptive prompting.", cols, rows,
                       notes), rows


#: Knock-outs reported by the injection table: column -> (audit label, header).
INJECTION_KNOCKOUTS = (("ko_add_pose", "add_pose", "w/o P' → pose"), ("ko_x_pose", "xattn_pose", "w/o x-attn pose"),
                       ("ko_scale_motion", "scale_motion", "w/o P' × motion"),
                       ("ko_x_motion", "xattn_motion", "w/o x-attn motion"),
                       ("ko_motion", "motion_stream", "motion stream cut"))


def knockout_delta(audits: Mapping, v: str, label: str, split: str = "test") -> Delta:
    e = _get(audits, (v, "summary", "knockout", label, split))
    iv = (e or {}).get("interval")
    if not iv:
        return Delta(None)
    if iv.get("over") == "seeds":
        # seeds pooled from a record that kept no per-clip effects: an interval over the seeds' means,
        # whose units are the seeds (stored as the "clips" of a one-sample interval)
        return Delta(Interval(iv["mean"], iv["lo"], iv["hi"], iv["se"], iv["df"], iv["clips"], 1, "seed means"))
    return Delta(Interval(iv["mean"], iv["lo"], iv["hi"], iv["se"], iv["df"], iv["seeds"], iv["clips"], iv["how"]))


def injection(R: Results, audits: Mapping, variants, wanted, out_dir) -> tuple[list[Path], list[dict]]:
    present = [v for v in wanted if v in R.metrics]
    rows = []
    occ_s = speed_s = None
    for v in present:
        m = R.metrics[v]
        main = _main(m)
        occ_s = _occ_max(m) or occ_s
        sp = m.get("suites", {}).get("speed") or {}
        speed_s = max(sp, key=lambda s: abs(float(s) - 1.0)) if sp else speed_s
        row = {"variant": v, "inject": _switches(R.configs, v)["inject"],
               "mpjpe": R.cell(v, (main, "mpjpe")), "mpjve": R.cell(v, (main, "mpjve")), **R.deltas(v, main),
               "occ": R.cell(v, ("suites", "occlusion", occ_s, "mpjpe"), f"suite/occlusion/{occ_s}") if occ_s else None,
               "speed": R.cell(v, ("suites", "speed", speed_s, "mpjpe"), f"suite/speed/{speed_s}") if speed_s else None}
        for key, label, _ in INJECTION_KNOCKOUTS:
            row[key] = knockout_delta(audits, v, label)
        rows.append(row)
    cols = [Column("variant", "Variant", align="l"), Column("inject", "Prompt enters", align="l"),
            Column("mpjpe", "MPJPE"), Column("mpjve", "MPJVE")] + R.delta_columns() + [
            Column("occ", f"MPJPE occl. {float(occ_s):g}" if occ_s is not None else "MPJPE occl.", fmt=fmt_mm),
            Column("speed", f"MPJPE speed ×{float(speed_s):g}" if speed_s else "MPJPE speed", fmt=fmt_mm)]
    cols += [Column(key, f"Δ {head}") for key, _, head in INJECTION_KNOCKOUTS]
    notes = R.notes(present) + R.baselines_note() + [
        f"Errors in mm, {_flip(_main(R.metrics[present[0]]) == 'test_flip' if present else False)} (occl. and "
        f"speed: robustness suites, {_suite_flip(R.metrics, present)}; bold: differs from {R.baseline}, paired "
        f"interval over seeds x clips; their Δ to both baselines: the robustness table). "
        f"'Prompt enters': the stream(s) that "
        f"receive the prompt (addition of P' and cross-attention): the pose stream (attention-based encoding), "
        f"the motion stream (velocity-driven refinement) or both.",
        "Δ columns: the component audit (poseprompt/stages/audit.py) — the same trained model on the same test clips with "
        "one component removed; MPJPE change in mm without flip averaging, 95 % interval over seeds x clips; "
        "bold: the interval excludes zero (the component matters); '–': the variant has no such component."] + \
        _missing_note(wanted, present)
    return write_table(out_dir, "injection", "Where the prompt enters the backbone, and what each entry does.",
                       cols, rows, notes), rows


def _long_columns(R: Results, first: str, extra: Sequence[Column] = ()) -> list[Column]:
    return [Column("setting", first, align="l"), Column("variant", "Variant", align="l"),
            Column("mpjpe", "MPJPE"), *extra] + R.delta_columns()


def robustness(R: Results, variants, out_dir) -> tuple[list[Path], list[dict]]:
    """Long format: one row per setting (clean, then every suite and strength) and variant, with the
    MPJPE (mean ± sd over seeds) and its paired difference to each baseline in the same setting."""
    settings = [("clean", None)] + [(suite_label(s, k, st), f"suite/{s}/{st}")
                                    for s, k, st in suite_settings(R.metrics, variants)]
    rows = []
    for label, key in settings:
        for v in variants:
            m = R.metrics[v]
            if key is None:
                clean = clean_setting(m)
                rows.append({"setting": label, "variant": v, "mpjpe": R.cell(v, (clean, "mpjpe")),
                             **R.deltas(v, clean)})
                continue
            _, s, st = key.split("/", 2)
            if st not in (m.get("suites", {}).get(s) or {}):
                continue
            rows.append({"setting": label, "variant": v, "mpjpe": R.cell(v, ("suites", s, st, "mpjpe")),
                         **R.deltas(v, key)})
    flip = R.metrics[variants[0]].get("flip_in_suites") if variants else False
    names = list(dict.fromkeys(s for s, _, _ in suite_settings(R.metrics, variants)))
    notes = R.notes(variants) + R.baselines_note() + [
        f"MPJPE in mm {_flip(flip)}, on the test split ('clean') and on it perturbed by each suite at each "
        f"strength: " + "; ".join(suite_description(R.metrics, s) for s in names) + ". Speed and drop change the "
        "motion (input and target) and so the clips; occlusion, jitter and noise keep the clean clips."]
    return write_table(out_dir, "robustness", "Robustness to occlusion, irregular motion and 2D noise (MPJPE).",
                       _long_columns(R, "Setting"), rows, notes), rows


def cross_domain(R: Results, variants, out_dir) -> tuple[list[Path], list[dict]]:
    """Long format: one row per set (the clean test split, graded shifts by kind and strength, real
    sets) and variant: MPJPE and P-MPJPE (mean ± sd over seeds) and the paired MPJPE difference to
    each baseline on the same set."""
    sets = cross_sets(R.metrics, variants)
    rows = []
    for v in variants:
        clean = clean_setting(R.metrics[v])
        rows.append({"setting": "test (clean)", "variant": v, "mpjpe": R.cell(v, (clean, "mpjpe")),
                     "p_mpjpe": R.cell(v, (clean, "p_mpjpe")), **R.deltas(v, clean)})
    for s, kind, strength in sets:
        for v in variants:
            if s not in (R.metrics[v].get("cross_domain") or {}):
                continue
            rows.append({"setting": set_label(s, kind, strength), "variant": v,
                         "mpjpe": R.cell(v, ("cross_domain", s, "mpjpe")),
                         "p_mpjpe": R.cell(v, ("cross_domain", s, "p_mpjpe")), **R.deltas(v, f"cross/{s}")})
    info = {}
    for v in variants:
        for s, d in R.metrics[v].get("cross_domain", {}).items():
            info[s] = (d.get("source"), d.get("input_2d"))
    graded = sorted({k for _, k, _ in sets if k is not None})
    flip = R.metrics[variants[0]].get("flip_in_suites") if variants else False
    notes = R.notes(variants) + R.baselines_note() + [
        "Cross-domain sets (data/processed/shift_*.npz): " +
        ("; ".join(f"{s.removeprefix('shift_')}: source {a}, 2D input {b}" for s, (a, b) in sorted(info.items()))
         if info else "none in this run") + f". Errors in mm {_flip(flip)}; the Δ is of the MPJPE." +
        (f" Graded synthetic shifts ({', '.join(graded)}): '<kind> <strength>', from mild to hard; the "
         f"strength s in (0, 1] moves every parameter of the shift from the training distribution (s near 0) to the "
         f"full shift (s = 1), on the same held-out subjects." if graded else "")]
    cols = _long_columns(R, "Set", [Column("p_mpjpe", "P-MPJPE")])
    return write_table(out_dir, "cross_domain", "Generalisation under domain shift (models trained on the training "
                       "split only).", cols, rows, notes), rows


def audit_knockouts(R: Results, audits: Mapping, variants, out_dir) -> tuple[list[Path], list[dict]]:
    """Every knock-out of every variant: the MPJPE change on the test clips with its interval."""
    labels: list[str] = []
    for v in variants:
        for k in _get(audits, (v, "summary", "knockout")) or {}:
            if k not in labels:
                labels.append(k)
    rows = [{"variant": v, **{k: knockout_delta(audits, v, k) for k in labels},
             "a": Cell(_get(audits, (v, "summary", "fusion", "motion_weight", "mean")),
                       _get(audits, (v, "summary", "fusion", "motion_weight", "std")), digits=2)} for v in variants]
    cols = [Column("variant", "Variant", align="l"), Column("a", "motion weight a")]
    cols += [Column(k, k.replace("_", " ")) for k in labels]
    what = {}
    for v in variants:
        for k, e in (_get(audits, (v, "summary", "knockout")) or {}).items():
            what.setdefault(k, e.get("what", ""))
    clips = sorted({str(_get(audits, (v, "per_seed", str(R.metrics[v]["seeds"][0]), "knockout", "clips", "test")))
                    for v in variants if v in audits})
    by_means = any(isinstance(d, Delta) and d.iv is not None and d.iv.how == "seed means"
                   for r in rows for d in r.values())
    over = ("95 % interval over the seeds' means (some seeds come from a record that kept no per-clip "
            "effects)" if by_means else "95 % interval over seeds x clips")
    notes = R.notes(variants)[:3] + [
        "Knock-outs: the same trained model on the same test clips with one component removed; MPJPE change "
        f"in mm (no flip averaging) on {', '.join(clips)} test clips, {over}; bold: the "
        "interval excludes zero. Positive: the model is worse without the component. '–': not a component of "
        "the variant. Motion weight a: mean weight of the motion stream in the adaptive fusions.",
        "Removed: " + "; ".join(f"{k}: {w}" for k, w in what.items()) + "."]
    return write_table(out_dir, "audit", "Component audit: what removing each component from the trained model "
                       "costs.", cols, rows, notes), rows


def audit_movement(R: Results, audits: Mapping, variants, out_dir) -> tuple[list[Path], list[dict]]:
    """How far every parameter group of the new components moved from initialisation, as a multiple
    of what weight decay alone would have done."""
    groups: list[str] = []
    for v in variants:
        for g in _get(audits, (v, "summary", "movement")) or {}:
            if g not in groups:
                groups.append(g)
    rows = []
    for v in variants:
        row = {"variant": v}
        for g in groups:
            e = _get(audits, (v, "summary", "movement", g, "ratio_to_wd"))
            row[g] = Cell(e["mean"], e.get("std"), digits=0) if e else None
        rows.append(row)
    from poseprompt.stages.audit import walk_reference
    ref = walk_reference(audits, variants, groups)
    has_walk = bool(ref)
    if has_walk:
        rows.append({"variant": "noise walk", **{g: Cell(ref[g], None, digits=0) if g in ref else None for g in groups}})
    wd = sorted({round(_get(audits, (v, "summary", "movement", g, "wd_alone", "mean")) or 0, 5)
                 for v in variants for g in groups if _get(audits, (v, "summary", "movement", g))})
    cols = [Column("variant", "Variant", align="l")] + [Column(g, g, fmt=fmt_mm) for g in groups]
    notes = [R.seeds_note(variants),
             "Relative change |θ − θ₀| / |θ₀| of every parameter group from its initial value, divided by the relative "
             f"change that weight decay alone would have produced at the run's learning-rate schedule "
             f"(1 − Π(1 − lr_t wd) = {', '.join(f'{x:.4f}' for x in wd)}). Softmax gates β are compared as β. "
             "Vectors, norms, gates and the pooling parameters are not decayed in training."]
    if has_walk:
        notes.append("Noise walk: the same ratio for a group whose gradient is pure noise (AdamW with the run's "
                     "learning rates, schedule and steps on i.i.d. N(0, 1) gradients from the same initial values, "
                     "mean of 16 draws; poseprompt.stages.audit.noise_walk). AdamW moves every coordinate by about its "
                     "learning rate per step whatever the gradient's size, so a change at or below this row does "
                     "not show that a group learned; the knock-outs do.")
    return write_table(out_dir, "audit_movement", "Component audit: how far each new parameter group moved from "
                       "its initialisation (multiple of what weight decay alone gives).", cols, rows, notes), rows


def cost(measured: Mapping[str, Mapping], metrics, configs, variants, out_dir) -> tuple[list[Path], list[dict]]:
    rows = []
    for v in variants:
        r = measured[v]
        rows.append({"variant": v, "trainable": r["trainable"], "frozen": r["frozen"],
                     "gflops": r["flops_per_frame"] / 1e9, "latency": r["latency_ms"],
                     "step": r["train_step_ms"], "mem": r["peak_mem_mb"]})
    cols = [Column("variant", "Variant", align="l"), Column("trainable", "Trainable", fmt=fmt_count),
            Column("frozen", "Frozen", fmt=fmt_count),
            Column("gflops", "GFLOPs/frame", fmt=lambda x: f"{x:.4f}" if x < 0.1 else f"{x:.2f}"),
            Column("latency", "Latency (ms/clip)", fmt=lambda x: f"{x:.1f}"),
            Column("step", "Train step (ms)", fmt=lambda x: f"{x:.1f}"),
            Column("mem", "Peak mem. (MB)", fmt=lambda x: "–" if x is None or math.isnan(x) else f"{x:.0f}")]
    first = measured[variants[0]] if variants else {}
    notes = [
        f"Measured by the figures stage on {first.get('device_name', '?')}, {first.get('threads', '?')} "
        f"thread(s); batch of {first.get('batch', '?')} clip(s) of T = {first.get('frames', '?')} frames; median of "
        f"{first.get('repeats', '?')} repeats after one warm-up; random inputs of the model's input shape "
        f"(the cost does not depend on the data: no split, no 2D input; the action slot gets a label word, "
        f"as in evaluation).",
        "FLOPs: matrix products and attention (torch.utils.flop_counter) of one forward pass per clip, divided "
        "by T (the frozen text tower runs once per clip). Latency: forward time per clip. Train step: forward, "
        "backward and AdamW update of one batch. Peak memory of a training step: "
        + ("the CUDA allocator's peak." if str(first.get("device", "")).startswith("cuda") else
           "weights, buffers, gradients, AdamW state and the tensors saved for the backward pass (counted "
           "exactly; a CPU has no allocator statistic)."),
    ] + data_notes(metrics, configs, variants)[1:]
    return write_table(out_dir, "cost", "Computation cost.", cols, rows, notes), rows
