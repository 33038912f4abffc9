"""Drawing skeletons in 2D (image) and 3D (camera frame), with optional per-joint colours."""
from __future__ import annotations

import numpy as np

from ..skeleton import H36M17, Skeleton
from .style import SIDE_COLOURS


def bone_side(skeleton: Skeleton, child: int) -> str:
    if child in skeleton.left:
        return "left"
    if child in skeleton.right:
        return "right"
    return "centre"


def draw_skeleton_2d(ax, kp2d: np.ndarray, conf: np.ndarray | None = None, skeleton: Skeleton = H36M17,
                     joint_values: np.ndarray | None = None, cmap="coolwarm", vlim=None, lw=1.5, s=10,
                     alpha=1.0, invert_y=True):
    """Bones of one pose (N, 2) in image-like coordinates (y down). Missing joints (conf 0) and
    their bones are not drawn. ``joint_values`` (N,) colours the joints (e.g. an eigenvector)."""
    kp2d = np.asarray(kp2d)
    vis = np.ones(len(kp2d), bool) if conf is None else np.asarray(conf) > 0
    for p, c in skeleton.bones:
        if vis[p] and vis[c]:
            ax.plot(kp2d[[p, c], 0], kp2d[[p, c], 1], color=SIDE_COLOURS[bone_side(skeleton, c)], lw=lw,
                    alpha=alpha, solid_capstyle="round", zorder=1)
    sc = None
    if joint_values is not None:
        v = np.asarray(joint_values)
        lim = vlim if vlim is not None else float(np.abs(v).max() or 1.0)
        sc = ax.scatter(kp2d[vis, 0], kp2d[vis, 1], c=v[vis], cmap=cmap, vmin=-lim, vmax=lim, s=s,
                        edgecolors="k", linewidths=0.3, zorder=2)
    else:
        ax.scatter(kp2d[vis, 0], kp2d[vis, 1], color="k", s=s * 0.4, zorder=2, alpha=alpha)
    ax.set_aspect("equal")
    if invert_y and not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    return sc


def draw_skeleton_3d(ax, pose3d: np.ndarray, skeleton: Skeleton = H36M17, colour=None, lw=1.5, alpha=1.0,
                     label=None, radius=1.0):
    """A camera-frame pose (N, 3) (x right, y down, z forward) drawn upright: plotted as
    (x, z, -y) so that the vertical axis points up and depth goes into the page."""
    p = np.asarray(pose3d)
    X, Y, Z = p[:, 0], p[:, 2], -p[:, 1]
    for i, (a, b) in enumerate(skeleton.bones):
        col = colour or SIDE_COLOURS[bone_side(skeleton, b)]
        ax.plot(X[[a, b]], Y[[a, b]], Z[[a, b]], color=col, lw=lw, alpha=alpha,
                label=label if i == 0 else None)
    r = radius
    cx, cy, cz = X[skeleton.root], Y[skeleton.root], Z[skeleton.root]
    ax.set_xlim(cx - r, cx + r)
    ax.set_ylim(cy - r, cy + r)
    ax.set_zlim(cz - r, cz + r)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.tick_params(length=0)
    return ax
