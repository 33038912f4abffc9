"""Figures of the method (paper section 3): the architecture (Figure 2), spectral Laplacian pooling
(Figure 3) and Gaussian temporal pooling (Figure 4), drawn from a trained checkpoint.

Figures 3 and 4 show the *learned* quantities of the model (band masks ``w_h(lambda)`` with
``mu_h, sigma_h, alpha_h``, kernels ``g_h(tau)``, gates ``beta``) and what they do to one real
clip of the test split; each function returns the arrays it plotted, read back from the artists,
so that tests can check that the figure shows what the checkpoint holds.

Helpers shared with the other figure modules: :func:`model_inputs` (test windows as model
input) and :func:`example_window` (the clip that the method figures show).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib import patches

from poseprompt.core.skeleton import get_skeleton
from poseprompt.data.format import PoseSequences
from poseprompt.data.windows import PoseWindows
from poseprompt.model.lifter import PosePromptLifter
from poseprompt.plots.skeleton import display_frame, draw_skeleton_2d
from poseprompt.plots.style import (CMAP_DIVERGING, FILL, GREY, PALETTE, TEXT_WIDTH, new_figure, paper_style,
                                    save_figure)

# ---- model inputs from a split ----------------------------------------------------------------------


def model_inputs(split: PoseSequences, frames: int, window_kw: Mapping | None = None, items=None,
                 mode: str = "test", stride: int | None = None) -> tuple[torch.Tensor, dict, list[dict]]:
    """A batch of windows of ``split`` as model input: ``x`` (B, T, N, 3), slot texts and the items.

    ``items``: window indices of ``PoseWindows(split, frames, stride, mode)`` (default: all)."""
    ds = PoseWindows(split, frames, stride=stride or frames, mode=mode, **dict(window_kw or {}))
    idx = range(len(ds)) if items is None else items
    its = [ds[int(i)] for i in idx]
    x = torch.stack([it["x"] for it in its])
    texts = {k: [it["texts"][k] for it in its] for k in its[0]["texts"]}
    return x, texts, its


def example_window(split: PoseSequences, frames: int, window_kw: Mapping | None = None,
                   frame: int | None = None) -> dict:
    """The window of ``frames`` frames centred (as far as its sequence allows) on ``frame`` (default:
    :func:`display_frame`, the most frontal, fully visible pose of the split). Returns the model
    input ``x`` (1, T, N, 3), its ``texts``, the global ``frame`` indices and ``slot`` of the pose."""
    if frame is None:
        frame = display_frame(split.kp2d, split.conf)
    ds = PoseWindows(split, frames, stride=1, mode="train", **dict(window_kw or {}))
    w = ds.windows()
    seq_start = split.starts[w[:, 0]] + w[:, 1]                        # global frame of slot 0
    covers = (seq_start <= frame) & (frame < seq_start + frames)
    if not covers.any():
        raise ValueError(f"frame {frame} lies in no window of {frames} frames")
    cand = np.flatnonzero(covers)
    best = int(cand[np.argmin(np.abs(seq_start[cand] + frames // 2 - frame))])
    it = ds[best]
    slot = int(np.flatnonzero(it["frame"].numpy() == frame)[0])
    return {"x": it["x"][None], "texts": {k: [v] for k, v in it["texts"].items()}, "frames": it["frame"].numpy(),
            "slot": slot, "seq": int(it["seq"]), "frame": int(frame)}


def heat_strip(ax, values: np.ndarray, row_labels: Sequence[str], cmap=CMAP_DIVERGING, vlim=None,
               highlight: Sequence[int] = ()):
    """Rows of vectors as a heat map (one row per vector, one cell per channel), labelled rows."""
    values = np.asarray(values)
    lim = vlim if vlim is not None else float(np.abs(values).max() or 1.0)
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    for r in highlight:
        ax.add_patch(patches.Rectangle((-0.5, r - 0.5), values.shape[1], 1, fill=False, ec="k", lw=0.8))
    return im


def _num(v: float, digits: int = 2) -> str:
    """A number for a label, without "-0.00"."""
    out = f"{v:.{digits}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def _needs(model: PosePromptLifter, attr: str, mode_attr: str, mode: str, figure: str):
    pool = getattr(model, attr, None)
    if pool is None or pool.mode != mode:
        raise ValueError(f"{figure} needs a model with {mode_attr}: {mode} and adaptive prompts; the given model "
                         f"has prompt={model.cfg.prompt}, {mode_attr}={getattr(model.cfg, mode_attr)} "
                         f"(set figures.proposed to such a variant)")
    return pool


def _small_colorbar(fig, mappable, ax):
    from matplotlib.ticker import MaxNLocator, ScalarFormatter
    cb = fig.colorbar(mappable, ax=ax, shrink=0.95, aspect=8, pad=0.01)
    cb.locator = MaxNLocator(3, symmetric=True)
    fmt = ScalarFormatter(useMathText=True)
    fmt.set_powerlimits((-1, 1))
    cb.formatter = fmt
    cb.ax.tick_params(labelsize=7)
    cb.ax.yaxis.get_offset_text().set_fontsize(7)
    cb.update_ticks()
    cb.outline.set_visible(False)
    return cb


def _pooled_strips(fig, v_heads: np.ndarray, beta: np.ndarray, sub: str, colours, highlight=(),
                   side_by_side: bool = False, prefix: str = ""):
    """In the (sub)figure ``fig``, two heat strips: the pooled vectors ``v^(h)`` and the gated ``v``
    (eq. 11), and their head-specific parts ``v^(h) - mean_h v^(h)`` (own colour scale)."""
    H = len(v_heads)
    if H == 1:
        axs = [fig.subplots(1, 1)]
    elif side_by_side:
        axs = fig.subplots(1, 2)
    else:
        axs = fig.subplots(2, 1, height_ratios=[H + 1, H])
    a = axs[0]
    rows = np.vstack([v_heads, (beta[:, None] * v_heads).sum(0)[None]])
    labels = [rf"$v_{sub}^{{({h + 1})}}$" for h in range(H)] + [rf"$v_{sub}$"]
    im = heat_strip(a, rows, labels, highlight=highlight)
    for h, lab in enumerate(a.get_yticklabels()[:H]):
        lab.set_color(colours[h])
    a.set_title(prefix + rf"pooled $v_{sub}^{{(h)}} \in \mathbb{{R}}^{{D_c}}$ (eq. {7 if sub == 's' else 10}); "
                rf"$v_{sub} = \Sigma_h \beta^{sub}_h v_{sub}^{{(h)}}$ (eq. 11)", fontsize=7, loc="left")
    _small_colorbar(fig, im, a)
    if H > 1:
        b = axs[1]
        dev = v_heads - v_heads.mean(0, keepdims=True)
        im = heat_strip(b, dev, [rf"$h={h + 1}$" for h in range(H)], highlight=highlight)
        for h, lab in enumerate(b.get_yticklabels()):
            lab.set_color(colours[h])
        ratio = float(np.linalg.norm(dev) / (np.linalg.norm(v_heads) or 1.0))
        b.set_title(rf"$v_{sub}^{{(h)}} - \mathrm{{mean}}_h\, v_{sub}^{{(h)}}$: "
                    rf"{100 * ratio:.1f}% of the norm", fontsize=7, loc="left")
        b.set_xlabel(r"channels $1 \ldots D_c$", fontsize=7)
        if side_by_side:
            a.set_xlabel(r"channels $1 \ldots D_c$", fontsize=7)
        cb = fig.colorbar(im, ax=b, shrink=0.9, aspect=10, pad=0.01)
        cb.outline.set_visible(False)
    else:
        a.set_xlabel(r"channels $1 \ldots D_c$", fontsize=7)


# ---- Figure 3: spectral Laplacian pooling -----------------------------------------------------------

def _init_values(init_state: Mapping | None, prefix: str) -> dict | None:
    """``mu`` and ``sigma`` at initialisation from a checkpoint's ``init_state`` (None if absent)."""
    if not init_state or f"{prefix}.sigma_raw" not in init_state:
        return None
    sigma = torch.nn.functional.softplus(torch.as_tensor(init_state[f"{prefix}.sigma_raw"]).double()) + 1e-3
    mu = torch.as_tensor(init_state.get(f"{prefix}.mu", torch.zeros_like(sigma))).double()
    return {"mu": mu, "sigma": sigma}


def laplacian_pooling_data(model: PosePromptLifter, example: Mapping, eigvec_k: Sequence[int] | None = None,
                           init_state: Mapping | None = None) -> dict:
    """Every quantity Figure 3 shows, from the model and one example window (numpy arrays); with
    ``init_state`` (a checkpoint's) also the band masks at initialisation.

    Indices ``k`` of eigenvectors/eigenvalues are 1-based, as in the paper (``lambda_1 = 0``)."""
    sp = _needs(model, "spatial_pool", "spatial_pool", "laplacian", "Figure 3")
    with torch.no_grad():
        lam = sp.eigvals.double()
        grid = torch.linspace(0.0, float(lam.max()) * 1.06, 400, dtype=torch.float64)
        mu, sigma = sp.mu.double(), sp.sigma.double()
        masks = torch.exp(-(grid[None] - mu[:, None]) ** 2 / (2 * sigma[:, None] ** 2))     # w_h on the grid
        ini = _init_values(init_state, "spatial_pool")
        init_masks = (torch.exp(-(grid[None] - ini["mu"][:, None]) ** 2 / (2 * ini["sigma"][:, None] ** 2)).numpy()
                      if ini is not None else None)
        X = model.embed(example["x"])                                                   # (1, T, N, D)
        Y = sp.rho(X)[0, example["slot"]]                                               # rho(X), (N, D_c)
        spectral = sp.U.T @ Y                                                           # X~ = U^T rho(X)
        filt = sp.filtered(X)[0, :, example["slot"]]                                    # (H, N, D_c)
        v_heads = sp(X)[0]                                                              # v_s^(h), (H, D_c)
        beta = model.gate.beta_s
        v_s = (beta[:, None] * v_heads).sum(0)
    Yn = Y.numpy()
    # one scalar per joint: the projection on the leading singular direction of rho(X) (not
    # centred, so the joints' common part, lambda_1 = 0, stays visible)
    direction = np.linalg.svd(Yn, full_matrices=False)[2][0]
    direction *= np.sign(direction @ Yn.mean(0)) or 1.0
    N = len(lam)
    if eigvec_k is None:
        eigvec_k = sorted({1, 2, 3, (N + 1) // 2, N})
    order = np.argsort(mu.numpy())
    return {
        "eigvals": lam.numpy(), "U": sp.U.numpy(), "eigvec_k": list(eigvec_k),
        "lambda_grid": grid.numpy(), "band_masks": masks.numpy(), "masks_at_eigvals": sp.band_masks().detach().numpy(),
        "init_masks": init_masks, "init_mu": ini["mu"].numpy() if ini is not None else None,
        "mu": mu.numpy(), "sigma": sigma.numpy(), "alpha": sp.alpha.detach().numpy(), "beta_s": beta.numpy(),
        "energy": (spectral ** 2).sum(-1).numpy(), "low_head": int(order[0]), "high_head": int(order[-1]),
        "joint_before": Yn @ direction, "joint_after": filt.numpy() @ direction,
        "v_s_heads": v_heads.numpy(), "v_s": v_s.numpy(), "frame": example["frame"],
        "kp2d": None,
    }


def fig3_laplacian_pooling(model: PosePromptLifter, split: PoseSequences, out_dir: str | Path,
                           name: str = "fig3_laplacian_pooling", window_kw: Mapping | None = None,
                           frame: int | None = None, dpi: float | None = None, formats=("png", "pdf"),
                           init_state: Mapping | None = None) -> dict:
    """Figure 3. (a) Laplacian eigenvectors ``u_k`` as joint colours on the skeleton graph; (b) the
    graph spectrum with the learned band masks ``w_h(lambda)`` of every head (dashed: at
    initialisation, from the checkpoint's ``init_state``) and the spectral energy of the example pose; (c) what the lowest- and highest-band heads keep of the example
    pose (``rho(X^(h))`` per joint, eq. 6-7) and the pooled vectors ``v_s^(h)``, gated to ``v_s``.
    Returns ``{"paths": [...], "data": {...}}`` with the arrays as plotted."""
    sk = model.skeleton
    ex = example_window(split, model.cfg.frames, window_kw, frame)
    d = laplacian_pooling_data(model, ex, init_state=init_state)
    kp = split.kp2d[d["frame"]]
    d["kp2d"] = kp
    H = len(d["mu"])
    colours = PALETTE[:H] if H <= len(PALETTE) else [PALETTE[h % len(PALETTE)] for h in range(H)]
    lo, hi = d["low_head"], d["high_head"]
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 5.6)
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.9])
        # (a) eigenvectors on the graph
        ks = d["eigvec_k"]
        axs = top.subplots(1, len(ks))
        for ax, k in zip(axs, ks):
            u = d["U"][:, k - 1]
            sc = draw_skeleton_2d(ax, kp, None, sk, joint_values=u, cmap=CMAP_DIVERGING,
                                  vlim=float(np.abs(d["U"]).max()),
                                  bone_colour="#BBBBBB", lw=1.2, s=16)
            ax.set_title(rf"$u_{{{k}}}$,  $\lambda_{{{k}}} = {d['eigvals'][k - 1]:.2f}$")
            ax.axis("off")
        cb = top.colorbar(sc, ax=axs, shrink=0.7, aspect=15, pad=0.01)
        cb.set_label("joint value", fontsize=7)
        cb.outline.set_visible(False)
        top.suptitle(r"(a) eigenvectors $u_k$ of the graph Laplacian $L = U \Lambda U^\top$ (eq. 3) as joint colours: "
                     r"smooth over the body for small $\lambda_k$, local for large $\lambda_k$",
                     fontsize=8, x=0.01, ha="left")
        left, right = bottom.subfigures(1, 2, width_ratios=[1.0, 1.25])
        # (b) spectrum and band masks
        ax = left.subplots()
        e = d["energy"] / (d["energy"].max() or 1.0)
        ax.bar(d["eigvals"], e, width=d["eigvals"].max() / 90, color="#BBBBBB", zorder=1,
               label=r"energy $\|\tilde X_k\|^2$ of the test pose in (c), $\tilde X = U^\top \rho(X)$ (eq. 4)")
        lines = []
        for h in range(H):
            (ln,) = ax.plot(d["lambda_grid"], d["band_masks"][h], color=colours[h], zorder=3,
                            label=(rf"$h={h + 1}$: $\mu_h={_num(d['mu'][h])}$, $\sigma_h={_num(d['sigma'][h])}$, "
                                   rf"$\alpha_h={_num(d['alpha'][h])}$, $\beta^s_h={_num(d['beta_s'][h])}$"))
            ax.plot(d["eigvals"], d["masks_at_eigvals"][h], "o", ms=2.2, color=colours[h], zorder=4)
            if d["init_masks"] is not None:
                ax.plot(d["lambda_grid"], d["init_masks"][h], color=colours[h], ls="--", lw=0.7, zorder=2,
                        label="at initialisation (dashed)" if h == 0 else None)
            lines.append(ln)
        ax.plot(d["eigvals"], np.zeros_like(d["eigvals"]), "|", color="k", ms=6, mew=0.8, zorder=5, clip_on=False)
        ax.set_xlabel(r"graph frequency $\lambda$ (eigenvalues $\lambda_1 \ldots \lambda_N$ marked)")
        ax.set_ylabel(r"$w_h(\lambda)$ (eq. 5)")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.05 * d["eigvals"].max(), d["lambda_grid"].max())
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=7, handlelength=1.2, ncol=1)
        ax.set_title(r"(b) learned band masks on the spectrum of $L$", fontsize=8, loc="left", x=-0.12)
        # (c) what two heads keep, and the pooled vectors
        right.suptitle(r"(c) one test pose: $\rho(X^{(h)})$ per joint (eq. 6), pooled to $v_s^{(h)}$ (eq. 7)",
                       fontsize=8, x=0.02, ha="left")
        c_top, c_bottom = right.subfigures(2, 1, height_ratios=[1.0, 1.4])
        c_axes = c_top.subplots(1, 3)
        vals = [d["joint_before"], d["joint_after"][lo], d["joint_after"][hi]]
        titles = [r"input $\rho(X)$", rf"low band, $h={lo + 1}$", rf"high band, $h={hi + 1}$"]
        for i, (v, t) in enumerate(zip(vals, titles)):
            a = c_axes[i]
            peak = float(np.abs(v).max() or 1.0)
            sc = draw_skeleton_2d(a, kp, None, sk, joint_values=v / peak, cmap=CMAP_DIVERGING, vlim=1.0,
                                  bone_colour="#BBBBBB", lw=1.0, s=13)
            a.axis("off")
            a.set_title(t, fontsize=7, color="k" if i == 0 else colours[[lo, hi][i - 1]])
            a.text(0.5, -0.02, f"max {_num(peak, 3)}", transform=a.transAxes, ha="center", va="top",
                   fontsize=7, color=GREY)
        cb = c_top.colorbar(sc, ax=c_axes, shrink=0.8, aspect=12, pad=0.01)
        cb.set_label("along 1st PC of $\\rho(X)$,\nscaled to max |value|", fontsize=7)
        cb.outline.set_visible(False)
        _pooled_strips(c_bottom, d["v_s_heads"], d["beta_s"], "s", colours, highlight=[lo, hi])
        plotted = np.array([ln.get_ydata() for ln in lines])
        plotted_x = np.asarray(lines[0].get_xdata())
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, formats, dpi=dpi)
    d["plotted_masks"], d["plotted_lambda"] = plotted, plotted_x
    return {"paths": paths, "size_in": size, "data": d}


# ---- Figure 4: Gaussian temporal pooling ------------------------------------------------------------

def _joint_x(split: PoseSequences, frames: np.ndarray, joint: int, root: int) -> np.ndarray:
    """The joint's horizontal 2D coordinate relative to the root joint (articulation, not travel)."""
    return (split.kp2d[frames, joint, 0] - split.kp2d[frames, root, 0]).astype(np.float64)


def _moving_joint_window(split: PoseSequences, frames: int, joint: int, root: int, window_kw) -> int:
    """The test window (stride T) in which ``joint`` moves most around a straight line (the most
    back-and-forth motion relative to the root), joint and root visible throughout."""
    ds = PoseWindows(split, frames, stride=frames, mode="test", **dict(window_kw or {}))
    best, score = 0, -1.0
    t = np.arange(frames)
    for i in range(len(ds)):
        f = ds[i]["frame"].numpy()
        if (split.conf[f][:, [joint, root]] <= 0).any():
            continue
        x = _joint_x(split, f, joint, root)
        s = float(np.std(x - np.polyval(np.polyfit(t, x, 1), t))) if frames > 2 else float(np.ptp(x))
        if s > score:
            best, score = i, s
    return best


def gaussian_pooling_data(model: PosePromptLifter, split: PoseSequences, window_kw=None,
                          joint: str | int = "right_wrist", init_state: Mapping | None = None) -> dict:
    tp = _needs(model, "temporal_pool", "temporal_pool", "gaussian", "Figure 4")
    sk, T = model.skeleton, model.cfg.frames
    j = sk.joints.index(joint) if isinstance(joint, str) and joint in sk.joints else (
        joint if isinstance(joint, int) else int(np.argmax(split.kp2d[..., 0].std(0))))
    i = _moving_joint_window(split, T, j, sk.root, window_kw)
    x, texts, its = model_inputs(split, T, window_kw, [i])
    frames = its[0]["frame"].numpy()
    traj = _joint_x(split, frames, j, sk.root)                                          # (T,)
    with torch.no_grad():
        g = tp.kernels().double().numpy()                                               # (H, 2R+1), sum 1
        M = tp.filters(T).double().numpy()                                              # (H, T, T)
        v_heads = tp(model.embed(x))[0].numpy()
        beta = model.gate.beta_t.numpy()
        ini = _init_values(init_state, "temporal_pool")
        g0 = None
        if ini is not None:
            tau = tp.offsets.double()
            g0 = torch.exp(-(tau[None] - ini["mu"][:, None]) ** 2 / (2 * ini["sigma"][:, None] ** 2))
            g0 = (g0 / g0.sum(-1, keepdim=True)).numpy()
    return {"tau": tp.offsets.numpy(), "kernels": g, "init_kernels": g0, "sigma": tp.sigma.detach().numpy(), "mu": tp.mu.detach().numpy(),
            "beta_t": beta, "joint": sk.joints[j], "frames": frames, "trajectory": traj,
            "filtered": M @ traj, "v_t_heads": v_heads, "v_t": (beta[:, None] * v_heads).sum(0),
            "action": texts["action"][0], "fps": float(split.fps[its[0]["seq"]]), "root": sk.joints[sk.root],
            "filter": tp.filter}


def fig4_gaussian_pooling(model: PosePromptLifter, split: PoseSequences, out_dir: str | Path,
                          name: str = "fig4_gaussian_pooling", window_kw: Mapping | None = None,
                          joint: str | int = "right_wrist", dpi: float | None = None,
                          formats=("png", "pdf"), init_state: Mapping | None = None) -> dict:
    """Figure 4. (a) the learned, normalised kernels ``g_h(tau)`` of every head (eq. 8; dashed: at
    initialisation, from the checkpoint's ``init_state``); (b) their
    effect on one joint's trajectory in a test window (the (T, T) filters of eq. 9, replicate
    padding at the window edges; with ``temporal_filter: detail`` what they remove); (c) the pooled vectors ``v_t^(h)`` and ``v_t`` (eq. 10-11)."""
    d = gaussian_pooling_data(model, split, window_kw, joint, init_state)
    H = len(d["sigma"])
    order = np.argsort(d["sigma"])
    colours = {int(h): PALETTE[r % len(PALETTE)] for r, h in enumerate(order)}
    with paper_style():
        fig = new_figure(TEXT_WIDTH, 3.7)
        upper, lower = fig.subfigures(2, 1, height_ratios=[2.1, 1.25])
        ax, ax_b = upper.subplots(1, 2, width_ratios=[1.0, 1.6])
        lines = []
        for h in order:
            (ln,) = ax.plot(d["tau"], d["kernels"][h], "-o", ms=2, color=colours[int(h)],
                            label=rf"$h={h + 1}$: $\sigma_h={d['sigma'][h]:.1f}$, $\beta^t_h={d['beta_t'][h]:.2f}$")
            if d["init_kernels"] is not None:
                ax.plot(d["tau"], d["init_kernels"][h], ls="--", lw=0.7, color=colours[int(h)],
                        label="at initialisation (dashed)" if h == order[-1] else None)
            lines.append(ln)
        ax.set_xlabel(r"temporal offset $\tau$ (frames)")
        ax.set_ylabel(r"$g_h(\tau)$ (sums to 1 over $\tau$)")
        hs, hl = int(order[0]), int(order[-1])
        ax.annotate("short-term", (0, d["kernels"][hs].max()), xytext=(6, -2), textcoords="offset points",
                    fontsize=7, color=colours[hs], va="top")
        k = max(0, len(d["tau"]) - 1 - len(d["tau"]) // 5)
        ax.annotate("long-range", (d["tau"][k], d["kernels"][hl][k]), xytext=(0, 7), textcoords="offset points",
                    fontsize=7, color=colours[hl], ha="center", va="bottom")
        ax.set_title(r"(a) learned kernels $g_h(\tau)$ (eq. 8)", loc="left")
        ax.legend(loc="upper left", fontsize=7, handlelength=1.0, borderaxespad=0.0)
        ax.set_ylim(0, max(1e-3, d["kernels"].max()) * 2.0)
        ax = ax_b
        t = np.arange(len(d["trajectory"]))
        detail = d["filter"] == "detail"
        if detail:      # what the smoothing removes is zero-mean: draw the input about its own mean
            ax.plot(t, d["trajectory"] - d["trajectory"].mean(), color="k", lw=0.9, marker=".", ms=2.5,
                    label="input $x_t$ (minus its mean)")
        else:
            ax.plot(t, d["trajectory"], color="k", lw=0.9, marker=".", ms=2.5, label="input $x_t$")
        for h in order:
            ax.plot(t, d["filtered"][h], color=colours[int(h)], lw=1.1, label=rf"$X_t^{{({h + 1})}}$")
        ax.set_xlabel(f"frame $t$ in the window (T = {len(t)}, {d['fps']:.0f} fps)")
        ax.set_ylabel(f"{d['joint'].replace('_', ' ')} x $-$ {d['root']} x")
        eq = (r"X_t - \sum_\tau g_h(\tau) X_{t-\tau}$ (detail)" if detail else
              r"\sum_\tau g_h(\tau) X_{t-\tau}$ (eq. 9)")
        ax.set_title(rf"(b) $X_t^{{(h)}} = {eq}, action '{d['action']}'", loc="left")
        ax.legend(fontsize=7, handlelength=1.2, loc="center left", bbox_to_anchor=(1.0, 0.5))
        _pooled_strips(lower, d["v_t_heads"], d["beta_t"], "t", colours, side_by_side=True, prefix="(c) ")
        plotted = {int(h): np.asarray(ln.get_ydata()) for h, ln in zip(order, lines)}
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, formats, dpi=dpi)
    d["plotted_kernels"] = np.array([plotted[h] for h in range(H)])
    return {"paths": paths, "size_in": size, "data": d}


# ---- Figure 2: the architecture ---------------------------------------------------------------------

def _box(ax, x0, y0, x1, y1, text, kind="backbone", fontsize=7, lw=0.7, ls="-", rounded=True, **kw):
    """A labelled box from (x0, y0) to (x1, y1) (inches); ``kind`` picks the fill (style.FILL);
    frozen boxes are hatched and say so."""
    style = "round,pad=0,rounding_size=0.05" if rounded else "square,pad=0"
    p = patches.FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle=style, fc=FILL.get(kind, "white"),
                               ec="k", lw=lw, ls=ls, hatch="//////" if kind == "frozen" else None, zorder=2)
    if kind == "frozen":
        p.set_edgecolor("#555555")
    ax.add_patch(p)
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, text, ha="center", va="center", fontsize=fontsize, zorder=4,
                linespacing=1.25, bbox=dict(fc=FILL["frozen"], ec="none", pad=0.6) if kind == "frozen" else None, **kw)
    return p


def _arrow(ax, xy0, xy1, text=None, text_at=0.5, offset=(0.0, 0.05), colour="k", ls="-", ha="center",
           va="bottom", connection="arc3", lw=0.8, fontsize=7, text_colour=None):
    ax.annotate("", xy1, xy0, arrowprops=dict(arrowstyle="-|>,head_length=0.35,head_width=0.17", color=colour,
                                              lw=lw, ls=ls, shrinkA=0, shrinkB=0, connectionstyle=connection),
                zorder=3)
    if text:
        x = xy0[0] + (xy1[0] - xy0[0]) * text_at + offset[0]
        y = xy0[1] + (xy1[1] - xy0[1]) * text_at + offset[1]
        ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color=text_colour or colour, zorder=5)


def _line(ax, xs, ys, colour="k", lw=0.8, ls="-"):
    ax.plot(xs, ys, color=colour, lw=lw, ls=ls, zorder=3, solid_capstyle="butt")


#: Figure 2 as data: lanes of the two streams, and every element as (kind, arguments, options),
#: drawn in order by :func:`fig2_architecture` (kinds: box, arrow, line, text, frame, plus). Positions
#: in inches on a TEXT_WIDTH x 4.55 canvas.
Y_POSE, Y_MOTION, LANE = 1.62, 0.72, 0.21         # lanes: pose stream, motion stream; half height of a box
PLUS_R = 0.075                                   # radius of the eq. 16 additions
NOTE = {"ha": "center", "va": "center", "fontsize": 7}
GREY_TEXT = "#444444"


def fig2_elements(cfg=None) -> list[tuple[str, tuple, dict]]:
    """The elements of Figure 2 for model configuration ``cfg`` (optional: it names the prompt
    encoder's depth and the configured sizes in the caption line)."""
    yP, yM, h, r = Y_POSE, Y_MOTION, LANE, PLUS_R
    lanes = (yP, yM)
    el: list[tuple[str, tuple, dict]] = []

    def add(kind, *args, **kw):
        el.append((kind, args, kw))
    # ---- input and embedding
    add("box", 0.03, 0.9, 0.74, 1.44, "2D input $x$\n$(B,T,N,2)$\n+ confidence", "io")
    add("box", 0.92, 0.42, 1.72, 1.92, "embedding\n(eq. 1-2)\n\n$X = \\phi(x)$\n$+\\, e^S_{pos}$\n$+\\, e^T_{pos}$")
    add("arrow", (0.74, 1.17), (0.92, 1.17))
    add("arrow", (1.72, yP), (2.12, yP), "$X$", text_at=0.45)
    add("box", 1.8, yM - 0.17, 2.07, yM + 0.17, "$\\Delta_t$", "backbone")
    add("line", [1.72, 1.8], [yM, yM])
    add("arrow", (2.07, yM), (2.12, yM))
    add("text", 1.94, yM - 0.22, "velocity", ha="center", va="top", fontsize=7)
    # ---- eq. 16 additions
    for y in lanes:
        add("plus", 2.2, y)
        add("arrow", (2.2 + r, y), (2.48, y))
    # ---- layer 1: stages and fusions
    add("frame", 2.42, 0.25, 2.05, 1.95)
    add("text", 4.44, 0.29, "GAtFuN layer 1", ha="right", va="bottom", fontsize=7, color=GREY_TEXT)
    for x0, x1, top, bottom in ((2.5, 3.2, "spatial\nMHSA", "spatial\ngraph attn."),
                                (3.48, 4.18, "temporal\nMHSA", "temporal\ngraph attn.")):
        add("box", x0, yP - h, x1, yP + h, top)
        add("box", x0, yM - h, x1, yM + h, bottom)
    for xf in (3.26, 4.24):
        add("box", xf, yM - h, xf + 0.17, yP + h, "", "backbone")
        add("text", xf + 0.085, (yP + yM) / 2, "adaptive motion fusion", rotation=90, zorder=4, **NOTE)
    for y in lanes:
        add("line", [3.2, 3.26], [y, y])
        add("arrow", (3.43, y), (3.48, y))
        add("line", [4.18, 4.24], [y, y])
        add("arrow", (4.41, y), (4.6, y))
    add("text", 2.5, yP + h + 0.03, "pose stream", ha="left", va="bottom", fontsize=7, style="italic")
    add("text", 2.5, yM - h - 0.03, "motion stream", ha="left", va="top", fontsize=7, style="italic")
    # ---- cross-attention, further layers, head
    for y in lanes:
        add("box", 4.6, y - h, 5.22, y + h, "cross-attn.\nto prompt", "new")
        add("arrow", (5.22, y), (5.36, y))
    add("frame", 5.36, 0.25, 0.5, 1.95)
    add("text", 5.61, 2.16, "layers\n2 ... depth", ha="center", va="top", fontsize=7, color=GREY_TEXT,
        bbox=dict(fc="white", ec="none", pad=0.3))
    for y in lanes:
        add("box", 5.42, y - h, 5.8, y + h, "as\nlayer 1")
    add("text", 5.61, (yP + yM) / 2, "+ fusions", color=GREY_TEXT, **NOTE)
    add("arrow", (5.8, yP), (5.94, yP))
    add("box", 5.94, yP - 0.3, 6.87, yP + 0.3, "head: LN,\nLinear, root-\nrelative")
    add("arrow", (6.4, yP - 0.3), (6.4, 0.82))
    add("box", 5.94, 0.28, 6.87, 0.82, "3D output $Y$\n$(B,T,N,3)$", "io")
    # ---- context pooling
    yb = 2.5                                                  # bus from X up to the poolings
    add("line", [1.32, 1.32], [1.92, yb])
    add("line", [0.62, 2.02], [yb, yb])
    add("arrow", (0.62, yb), (0.62, 2.62))
    add("arrow", (2.02, yb), (2.02, 2.62))
    add("text", 1.28, 2.2, "$X\\ (B,T,N,D)$", ha="right", va="center", fontsize=7)
    add("box", 0.03, 2.62, 1.25, 3.3, "Laplacian pooling\n(eq. 3-7)\n$\\tilde X = U^\\top X$, $w_h(\\lambda)$\n"
        "$\\mu_h, \\sigma_h, \\alpha_h, \\rho$", "new")
    add("box", 1.4, 2.62, 2.62, 3.3, "Gaussian pooling\n(eq. 8-10)\n$g_h(\\tau)$; $\\sigma_h$, $\\eta$", "new")
    add("arrow", (0.62, 3.3), (0.62, 3.6), "$v_s^{(h)}$", offset=(0.05, -0.05), ha="left")
    add("arrow", (2.02, 3.3), (2.02, 3.6), "$v_t^{(h)}$", offset=(0.05, -0.05), ha="left")
    add("box", 0.03, 3.6, 2.62, 4.27, "gates (eq. 11-12):  $v_s = \\Sigma_h \\beta^s_h v_s^{(h)}$,  "
        "$v_t = \\Sigma_h \\beta^t_h v_t^{(h)}$\n$\\beta^s = \\mathrm{softmax}(a^s)$, "
        "$\\beta^t = \\mathrm{softmax}(a^t)$;  $z = [v_s; v_t]$", "new")
    # ---- slot descriptors and prompt adaptation
    add("arrow", (2.62, 3.93), (2.85, 3.93), "$z$", offset=(0, 0.03))
    add("box", 2.85, 3.62, 3.62, 4.24, "$\\mathrm{MLP}_k$\n(eq. 13)", "new")
    add("arrow", (3.62, 3.93), (3.86, 3.93), "$z_k$", offset=(0, 0.03))
    add("box", 3.86, 3.62, 4.55, 4.24, "$f_k$\n(eq. 14b)", "new")
    add("arrow", (4.2, 3.62), (4.2, 3.25), "$\\Delta p_k$", offset=(0.05, 0.0), ha="left", va="center")
    add("box", 2.85, 2.72, 3.62, 3.25, "context $r_k$\n(learned)", "new")
    add("arrow", (3.62, 3.0), (3.8, 3.0))
    add("box", 3.8, 2.65, 4.95, 3.25, "$p_k = [\\tilde p_k;\\, r_k + \\Delta p_k]$\n(eq. 14a)", "new")
    add("box", 4.78, 3.72, 6.87, 4.27, "slot texts $t_k$, $k = 1 \\ldots K$: person, speed,\n"
        "action (label), body, arm, leg", "io")
    add("box", 5.15, 2.95, 6.87, 3.47, "token embedding\n$\\tilde p_k = \\mathrm{CLIP}(t_k)[t]$ (eq. 15)", "frozen")
    add("arrow", (6.0, 3.72), (6.0, 3.47))
    add("arrow", (5.15, 3.08), (4.95, 3.08), "$\\tilde p_k$", offset=(0, 0.03))
    add("box", 5.15, 2.3, 6.87, 2.82, "CLIP text transformer\n$[\\mathrm{start};\\,p_1 \\ldots p_K;\\,"
        "\\mathrm{end}]$", "frozen")
    add("arrow", (4.95, 2.8), (5.15, 2.62), "$P$", offset=(-0.02, 0.04), connection="angle,angleA=0,angleB=90,rad=0")
    n_enc = cfg.prompt_encoder_layers if cfg is not None else None
    add("box", 3.35, 2.3, 4.95, 2.58, "prompt encoder" + (f" ({n_enc} layer{'s' * (n_enc != 1)})" if n_enc else ""),
        "new")
    add("arrow", (5.15, 2.44), (4.95, 2.44))
    # ---- prompt entry points into the backbone: addition (eq. 16) and cross-attention tokens
    add_c, tok_c = PALETTE[3], PALETTE[0]
    add("line", [3.6, 3.6], [2.3, 2.24])
    add("line", [2.2, 3.6], [2.24, 2.24], colour=add_c)
    add("arrow", (2.2, 2.24), (2.2, yP + r), colour=add_c)
    add("line", [2.05, 2.2], [2.24, 2.24], colour=add_c)
    add("line", [2.05, 2.05], [2.24, yM + 0.25], colour=add_c)
    add("arrow", (2.05, yM + 0.25), (2.2 - r * 0.7, yM + r * 0.7), colour=add_c)
    add("text", 2.3, 2.17, "$P'$ (end token): $X \\leftarrow X + \\mathrm{Linear}(P')$ (eq. 16)", ha="left",
        va="top", fontsize=7, color=add_c, zorder=5, bbox=dict(fc="white", ec="none", pad=0.5))
    add("line", [4.8, 4.8], [2.3, 2.24], colour=tok_c)
    add("arrow", (4.8, 2.24), (4.8, yP + h), colour=tok_c)
    add("line", [4.8, 5.27], [2.24, 2.24], colour=tok_c)
    add("line", [5.27, 5.27], [2.24, yM + h + 0.06], colour=tok_c)
    add("arrow", (5.27, yM + h + 0.06), (5.1, yM + h), colour=tok_c)
    add("text", 5.035, 2.18, "prompt\ntokens", ha="center", va="top", fontsize=7, color=tok_c, zorder=5)
    # ---- legend and the configured sizes
    x = 0.05
    for kind, label in (("backbone", "GAtFuN backbone"), ("new", "pose-adaptive prompting (this work)"),
                        ("frozen", "frozen (CLIP text tower)")):
        add("box", x, 0.03, x + 0.22, 0.15, "", kind, rounded=False)
        add("text", x + 0.28, 0.09, label, ha="left", va="center", fontsize=7)
        x += 0.28 + 0.062 * len(label) + 0.15
    if cfg is not None:
        add("text", 0.05, -0.1, f"this configuration: T={cfg.frames}, N={get_skeleton(cfg.skeleton).num_joints}, "
            f"D={cfg.width}, depth={cfg.depth}, $H_s$={cfg.spatial_heads}, $H_t$={cfg.temporal_heads}, "
            f"K={cfg.num_slots}, L={cfg.prompt_length}, t={cfg.text_tokens}", ha="left", va="center", fontsize=7,
            color=GREY_TEXT)
    return el


def _frame(ax, x, y, w, h):
    """The dashed outline of a group of layers."""
    ax.add_patch(patches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.06", fc="none",
                                        ec=GREY, lw=0.8, ls="--", zorder=1))


def _plus(ax, x, y, r=PLUS_R):
    ax.add_patch(patches.Circle((x, y), r, fc="white", ec="k", lw=0.7, zorder=4))
    ax.text(x, y, "+", ha="center", va="center", fontsize=8, zorder=5)


DRAW = {"box": _box, "arrow": _arrow, "line": _line, "frame": _frame, "plus": _plus,
        "text": lambda ax, x, y, s, **kw: ax.text(x, y, s, **kw)}


def fig2_architecture(out_dir: str | Path, cfg=None, name: str = "fig2_architecture", dpi: float | None = None,
                      formats=("png", "pdf")) -> dict:
    """Figure 2: data flow of the model from the 2D input to the 3D output: the elements of
    :func:`fig2_elements` drawn in order. ``cfg`` (a :class:`~poseprompt.config.sections.ModelConfig`,
    optional) puts the configured sizes in the caption line (T, N, D, depth, H_s, H_t, K, L, t).
    Returns the paths and the box texts."""
    W, Hgt, y_min = TEXT_WIDTH, 4.35, -0.2
    with paper_style():
        fig = new_figure(W, Hgt - y_min)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, W)
        ax.set_ylim(y_min, Hgt)
        ax.axis("off")
        for kind, args, kw in fig2_elements(cfg):
            DRAW[kind](ax, *args, **kw)
        texts = [t.get_text() for t in ax.texts]
        size = tuple(float(v) for v in fig.get_size_inches())
        paths = save_figure(fig, out_dir, name, formats, dpi=dpi)
    return {"paths": paths, "size_in": size, "data": {"texts": texts}}
