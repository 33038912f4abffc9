"""Figures of the prepared data (notebooks/01_prepare_data.ipynb): what the model sees and what the
robustness suites do to a clip. Shown in the notebook, not written to ``figures/``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from poseprompt.core.skeleton import get_skeleton
from poseprompt.data.format import PoseSequences
from poseprompt.data.perturb import perturb_sequences
from poseprompt.plots.skeleton import draw_skeleton_2d, draw_skeleton_3d
from poseprompt.plots.style import TEXT_WIDTH, paper_style

#: The perturbations drawn by :func:`perturbation_examples`: name -> (kind, strength, options).
EXAMPLES = {"occlusion 0.3 (limbs)": ("occlusion", 0.3, {"occlusion_mode": "limbs"}),
            "speed x2": ("speed", 2.0, {}), "frame drops 0.3": ("drop", 0.3, {}), "2D noise 15 px": ("noise", 15.0, {})}


def example_sequences(split: PoseSequences, seed: int, count: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).choice(split.num_sequences, size=min(count, split.num_sequences), replace=False)


def data_examples(split: PoseSequences, seed: int, count: int = 4):
    """A few frames of a split: the 2D input (missing joints not drawn) over the camera-frame 3D
    target (root-relative, metres, drawn upright). Returns the figure."""
    skeleton = get_skeleton(split.meta["skeleton"])
    seqs = example_sequences(split, seed, count)
    with paper_style():
        fig = plt.figure(figsize=(TEXT_WIDTH, 3.2))
        for i, s in enumerate(seqs):
            f = split.frames(s).start + split.lengths()[s] // 2
            ax = fig.add_subplot(2, len(seqs), i + 1)
            draw_skeleton_2d(ax, split.kp2d_px[f], split.conf[f], skeleton)
            ax.set_title(f"{split.action[s]} ({split.subject[s]})")
            ax3 = fig.add_subplot(2, len(seqs), len(seqs) + i + 1, projection="3d")
            draw_skeleton_3d(ax3, split.pose3d[f], skeleton)
    return fig


def perturbation_examples(split: PoseSequences, seed: int, joint: str = "left_wrist"):
    """One joint's 2D input and confidence under each perturbation of the robustness suites, on one
    sequence of ``split``. Returns (figure, rows of frames and hidden fraction per case)."""
    skeleton = get_skeleton(split.meta["skeleton"])
    one = split.select([int(example_sequences(split, seed)[0])])
    j = skeleton.joints.index(joint)
    cases = {"clean": one, **{name: perturb_sequences(one, kind, strength, seed, **opts)
                              for name, (kind, strength, opts) in EXAMPLES.items()}}
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.2))
        for name, s in cases.items():
            axes[0].plot(np.where(s.conf[:, j] > 0, s.kp2d_px[:, j, 0], np.nan), label=name)
            axes[1].plot(s.conf[:, j], label=name)
        axes[0].set(xlabel="frame", ylabel=f"{joint.replace('_', ' ')} u (px)", title="2D input of one joint")
        axes[1].set(xlabel="frame", ylabel="confidence", title="confidence (0 = missing)")
        axes[1].legend(loc="lower left", fontsize=6)
    rows = [{"case": name, "frames": s.num_frames, "hidden": float((s.conf == 0).mean())} for name, s in cases.items()]
    return fig, rows
