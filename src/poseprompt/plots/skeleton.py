"""Drawing skeletons in 2D (image) and 3D (camera frame), with optional per-joint colours.

Also: short joint labels for axis ticks (:func:`joint_short_names`) and the choice of a pose that
shows the whole body well (:func:`display_frame`), both read off the skeleton and the data.
"""
from __future__ import annotations

import numpy as np

from poseprompt.core.skeleton import H36M17, Skeleton
from poseprompt.plots.style import GREY, SIDE_COLOURS


def bone_side(skeleton: Skeleton, child: int) -> str:
    if child in skeleton.left:
        return "left"
    if child in skeleton.right:
        return "right"
    return "centre"


def joint_short_names(skeleton: Skeleton = H36M17) -> list[str]:
    """Tick labels: "right_wrist" -> "RWri", "pelvis" -> "Pelv" (side letter + 3 letters)."""
    out = []
    for name in skeleton.joints:
        parts = name.lower().split("_")
        side = {"left": "L", "right": "R"}.get(parts[0], "")
        word = parts[-1] if side else "".join(parts)
        out.append(side + word[:3 if side else 4].capitalize())
    return out


def display_frame(kp2d: np.ndarray, conf: np.ndarray, skeleton: Skeleton = H36M17,
                  candidates: np.ndarray | None = None) -> int:
    """Index of the frame (among ``candidates``, default all) whose 2D pose is seen most frontally
    and openly: all joints visible, largest width of the shoulders, hips and wrists relative to
    the body height. Used to pick the example pose of the method figures."""
    kp2d, conf = np.asarray(kp2d, np.float64), np.asarray(conf)
    idx = np.arange(len(kp2d)) if candidates is None else np.asarray(candidates)
    k, c = kp2d[idx], conf[idx]
    pairs = np.array([(l, r) for l, r in zip(skeleton.left, skeleton.right)])        # (P, 2)
    width = np.abs(k[:, pairs[:, 0], 0] - k[:, pairs[:, 1], 0]).mean(1)              # (F,)
    height = np.ptp(k[..., 1], axis=1) + 1e-9
    score = np.where((c > 0).all(1), width / height, -np.inf)
    return int(idx[int(np.argmax(score))])


def draw_skeleton_2d(ax, kp2d: np.ndarray, conf: np.ndarray | None = None, skeleton: Skeleton = H36M17,
                     joint_values: np.ndarray | None = None, cmap="coolwarm", vlim=None, lw=1.5, s=10,
                     alpha=1.0, invert_y=True, bone_colour=None, missing_at: np.ndarray | None = None,
                     symmetric: bool = True):
    """Bones of one pose (N, 2) in image-like coordinates (y down). Missing joints (conf 0) and
    their bones are not drawn, unless ``missing_at`` (N, 2) gives where they really are: then
    they appear as open grey circles joined by dotted bones (an occluded input, shown as such).
    ``joint_values`` (N,) colours the joints (e.g. an eigenvector): symmetric colour limits
    ``[-vlim, vlim]`` by default, ``[0, vlim]`` with ``symmetric=False``. ``bone_colour``
    replaces the left/right/centre colours of the bones (e.g. grey under coloured joints)."""
    kp2d = np.asarray(kp2d)
    vis = np.ones(len(kp2d), bool) if conf is None else np.asarray(conf) > 0
    for p, c in skeleton.bones:
        if vis[p] and vis[c]:
            ax.plot(kp2d[[p, c], 0], kp2d[[p, c], 1], color=bone_colour or SIDE_COLOURS[bone_side(skeleton, c)],
                    lw=lw, alpha=alpha, solid_capstyle="round", zorder=1)
        elif missing_at is not None:
            a = kp2d[p] if vis[p] else missing_at[p]
            b = kp2d[c] if vis[c] else missing_at[c]
            ax.plot([a[0], b[0]], [a[1], b[1]], color=GREY, lw=0.8 * lw, ls=":", zorder=1)
    if missing_at is not None and (~vis).any():
        m = np.asarray(missing_at)[~vis]
        ax.scatter(m[:, 0], m[:, 1], s=s * 1.6, facecolors="white", edgecolors=GREY, linewidths=0.8, zorder=2)
    sc = None
    if joint_values is not None:
        v = np.asarray(joint_values)
        lim = vlim if vlim is not None else float(np.abs(v[vis]).max() or 1.0)
        lo = -lim if symmetric else 0.0
        sc = ax.scatter(kp2d[vis, 0], kp2d[vis, 1], c=v[vis], cmap=cmap, vmin=lo, vmax=lim, s=s,
                        edgecolors="k", linewidths=0.3, zorder=3)
    else:
        ax.scatter(kp2d[vis, 0], kp2d[vis, 1], color="k", s=s * 0.4, zorder=3, alpha=alpha)
    ax.set_aspect("equal")
    if invert_y and not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    return sc


def draw_skeleton_3d(ax, pose3d: np.ndarray, skeleton: Skeleton = H36M17, colour=None, lw=1.5, alpha=1.0,
                     label=None, radius=1.0, ls="-", centre: np.ndarray | None = None):
    """A camera-frame pose (N, 3) (x right, y down, z forward) drawn upright: plotted as
    (x, z, -y) so that the vertical axis points up and depth goes into the page. The view is
    centred on the root joint, or on ``centre`` (3,) in camera coordinates (to overlay poses)."""
    p = np.asarray(pose3d)
    X, Y, Z = p[:, 0], p[:, 2], -p[:, 1]
    for i, (a, b) in enumerate(skeleton.bones):
        col = colour or SIDE_COLOURS[bone_side(skeleton, b)]
        ax.plot(X[[a, b]], Y[[a, b]], Z[[a, b]], color=col, lw=lw, alpha=alpha, ls=ls,
                label=label if i == 0 else None)
    r = radius
    if centre is None:
        cx, cy, cz = X[skeleton.root], Y[skeleton.root], Z[skeleton.root]
    else:
        cx, cy, cz = centre[0], centre[2], -centre[1]
    ax.set_xlim(cx - r, cx + r)
    ax.set_ylim(cy - r, cy + r)
    ax.set_zlim(cz - r, cz + r)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.tick_params(length=0)
    return ax
