"""Figure 11, qualitative results: 3D skeletons of the ground truth, the baseline and the proposed
model on the test clips where the two differ most, clean and occluded.

Clips are the non-overlapping test windows of T frames (as evaluated). A clip's gap is the mean over
its frames of (baseline MPJPE - proposed MPJPE); the clips with the largest gaps are shown, each at
its frame of largest gap. Occluded rows use the saved predictions for one occlusion strength
(``predictions.npz``, key ``occlusion_<strength>``) and regenerate the occluded 2D input exactly
(``perturb_sequences`` with the evaluation seed), so the 2D panel shows which joints were hidden.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from poseprompt.core.skeleton import Skeleton, get_skeleton
from poseprompt.data.format import PoseSequences
from poseprompt.data.perturb import perturb_sequences
from poseprompt.data.windows import PoseWindows
from poseprompt.plots.skeleton import draw_skeleton_2d, draw_skeleton_3d
from poseprompt.plots.style import GREY, TEXT_WIDTH, new_figure, paper_style, save_figure


def frame_mpjpe(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE in mm of root-relative poses (F, N, 3) in metres (NaN where pred is NaN)."""
    return np.linalg.norm(pred.astype(np.float64) - target.astype(np.float64), axis=-1).mean(-1) * 1000.0


def projected_2d(split: PoseSequences, frame: int) -> np.ndarray:
    """Pixel positions (N, 2) of the frame's 3D joints through its camera (pinhole ``fx, fy, cx, cy``):
    where joints missing from the 2D input really are (display only)."""
    s = int(np.searchsorted(split.starts, frame, side="right") - 1)
    fx, fy, cx, cy = (float(v) for v in split.intrinsics[s])
    p = split.pose3d[frame].astype(np.float64) + split.root3d[frame]
    z = np.maximum(p[:, 2], 1e-6)
    return np.stack([fx * p[:, 0] / z + cx, fy * p[:, 1] / z + cy], axis=1)


def occlusion_options(evaluate_section: Mapping) -> dict:
    """The keyword options of the occlusion suite, as the evaluation passed them."""
    spec = dict((evaluate_section.get("suites") or {}).get("occlusion") or {})
    spec.pop("strengths", None)
    return {k if k.startswith("occlusion_") else f"occlusion_{k}": v for k, v in spec.items()}


def hardest_clips(err_base: np.ndarray, err_prop: np.ndarray, split: PoseSequences, frames: int, count: int,
                  window_kw=None) -> list[dict]:
    """The ``count`` test windows with the largest mean gap (baseline - proposed), each with the
    frame of largest gap: ``[{"window", "frames", "frame", "gap"}]``, largest first."""
    ds = PoseWindows(split, frames, stride=frames, mode="test", **dict(window_kw or {}))
    rows = []
    for i in range(len(ds)):
        it = ds[i]
        f = it["frame"].numpy()[it["eval_mask"].numpy()]
        if not len(f):
            continue
        gap = err_base[f] - err_prop[f]
        if not np.isfinite(gap).any():
            continue
        k = int(np.nanargmax(gap))
        rows.append({"window": i, "frames": f, "frame": int(f[k]), "gap": float(np.nanmean(gap))})
    rows.sort(key=lambda r: -r["gap"])
    seqs = [int(ds.windows()[r["window"], 0]) for r in rows]
    picked, used = [], set()
    for r, s in zip(rows, seqs):                  # prefer clips of different sequences
        if s not in used:
            picked.append(r)
            used.add(s)
        if len(picked) == count:
            return picked
    return (picked + [r for r in rows if r not in picked])[:count]


def fig11_qualitative(test: PoseSequences, predictions: Mapping[str, Mapping[str, np.ndarray]], out_dir: str | Path,
                      baseline: str = "gatfun", proposed: str = "full", frames: int = 27, clips: int = 2,
                      occlusion_strength: float | None = None, evaluate_section: Mapping | None = None,
                      window_kw=None, name: str = "fig11_qualitative", dpi: float | None = None) -> dict:
    """Rows: ``clips`` hardest clean clips, then ``clips`` hardest occluded clips (when occlusion
    predictions exist). Columns: 2D input (hidden joints as open circles), ground truth, baseline,
    proposed (ground truth in grey behind the predictions); per-frame MPJPE in the titles.

    ``predictions``: ``{variant: {"test": (F,N,3), "occlusion_<s>": (F,N,3), ...}}`` in metres."""
    sk: Skeleton = get_skeleton(test.meta.get("skeleton", "h36m17"))
    evaluate_section = evaluate_section or {}
    pb, pp = predictions[baseline], predictions[proposed]
    settings = [("clean", "test", test)]
    occ_keys = sorted({k for k in pb if k.startswith("occlusion_")} & {k for k in pp if k.startswith("occlusion_")},
                      key=lambda k: float(k.split("_", 1)[1]))
    if occ_keys:
        key = (f"occlusion_{occlusion_strength}" if occlusion_strength is not None
               and f"occlusion_{occlusion_strength}" in occ_keys else occ_keys[-1])
        strength = float(key.split("_", 1)[1])
        occluded = perturb_sequences(test, "occlusion", strength, int(evaluate_section.get("seed", 0)),
                                     **occlusion_options(evaluate_section))
        settings.append((f"occlusion {strength:g}", key, occluded))
    rows = []
    for label, key, split in settings:
        eb, ep = frame_mpjpe(pb[key], test.pose3d), frame_mpjpe(pp[key], test.pose3d)
        for c in hardest_clips(eb, ep, split, frames, clips, window_kw):
            rows.append({**c, "setting": label, "key": key, "split": split, "err_base": float(eb[c["frame"]]),
                         "err_prop": float(ep[c["frame"]])})
    if not rows:
        raise ValueError("Figure 11: no scored test frames to show")
    ncol = 4
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 1.55 * len(rows) + 0.15)
        gs = fig.add_gridspec(len(rows), ncol)
        for r, row in enumerate(rows):
            f, split = row["frame"], row["split"]
            seq = int(np.searchsorted(test.starts, f, side="right") - 1)
            ax = fig.add_subplot(gs[r, 0])
            hidden = split.conf[f] <= 0
            truth = np.where((test.conf[f] > 0)[:, None], test.kp2d_px[f], projected_2d(test, f))
            draw_skeleton_2d(ax, split.kp2d_px[f], split.conf[f], sk, lw=1.2, s=8,
                             missing_at=truth if hidden.any() else None)
            for s in ax.spines.values():
                s.set_visible(False)
            ax.set_title(f"2D input ({row['setting']})", fontsize=7)
            ax.set_ylabel(f"{test.action[seq]}, {test.subject[seq]}/{test.camera[seq]}\nframe "
                          f"{f - test.starts[seq]}, gap {row['gap']:.0f} mm", fontsize=7)
            gt = test.pose3d[f]
            radius = float(np.abs(gt - gt[sk.root]).max()) * 0.9
            panels = [("ground truth", gt, None), (f"{baseline}: {row['err_base']:.0f} mm", pb[row["key"]][f], gt),
                      (f"{proposed}: {row['err_prop']:.0f} mm", pp[row["key"]][f], gt)]
            for c, (title, pose, ref) in enumerate(panels, start=1):
                a3 = fig.add_subplot(gs[r, c], projection="3d")
                if ref is not None:
                    draw_skeleton_3d(a3, ref, sk, colour="#BBBBBB", lw=1.0, radius=radius)
                draw_skeleton_3d(a3, pose.astype(np.float64), sk, lw=1.3, radius=radius)
                a3.view_init(elev=10, azim=-80)          # close to the camera's view, depth visible
                a3.set_axis_off()
                a3.set_title(title, fontsize=7, y=1.0)
        fig.suptitle(f"test clips with the largest gap between {baseline} and {proposed} (MPJPE difference, mean "
                     f"over the clip's T = {frames} frames)\n2D input {test.meta.get('input_2d')}; grey: ground "
                     f"truth; open circles, dotted bones: joints missing from the input", fontsize=7, color=GREY)
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, dpi=dpi)
    shown = [{k: v for k, v in r.items() if k != "split"} for r in rows]
    return {"paths": paths, "size_in": size, "data": {"rows": shown}}
