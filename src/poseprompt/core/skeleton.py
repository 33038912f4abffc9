"""The skeleton as data: joint names, parents, left/right pairs and the graph built from them.

Nothing in the model hard-codes 17 joints: every module receives a :class:`Skeleton` (or the
matrices derived from it). The canonical layout of the project is :data:`H36M17`, the 17-joint
Human3.6M skeleton used by the field (see README, "Data format").

The graph quantities are those of paper section 3.2:
adjacency ``A`` (bones, symmetric, no self-loops), degree ``D``, combinatorial Laplacian
``L = D - A`` and its eigendecomposition ``L = U diag(lambda) U^T`` (eq. 3), eigenvalues sorted
ascending so that column 0 of ``U`` is the constant vector with ``lambda_0 = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree. ``parents[j]`` is the parent of joint ``j`` (-1 for the root)."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]   # joints on the subject's left, paired index-wise with ``right``
    right: tuple[int, ...]
    limbs: tuple[int, ...] = ()  # hips, knees, ankles, shoulders, elbows, wrists (limb metrics)

    def __post_init__(self):
        n = len(self.joints)
        if len(self.parents) != n:
            raise ValueError(f"skeleton {self.name!r}: {n} joints but {len(self.parents)} parents")
        roots = [j for j, p in enumerate(self.parents) if p < 0]
        if len(roots) != 1:
            raise ValueError(f"skeleton {self.name!r}: expected exactly one root (parent -1), got {roots}")
        for j, p in enumerate(self.parents):
            if p >= n:
                raise ValueError(f"skeleton {self.name!r}: parent {p} of joint {j} is out of range")
        if len(self.left) != len(self.right):
            raise ValueError(f"skeleton {self.name!r}: left and right lists differ in length")
        # Reject cycles: walking up from any joint must reach the root within n steps.
        for j in range(n):
            k, steps = j, 0
            while self.parents[k] >= 0:
                k, steps = self.parents[k], steps + 1
                if steps > n:
                    raise ValueError(f"skeleton {self.name!r}: the parent list has a cycle at joint {j}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    @property
    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) pairs."""
        return [(p, j) for j, p in enumerate(self.parents) if p >= 0]

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (an involution)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    def adjacency(self) -> np.ndarray:
        """Symmetric 0/1 bone adjacency ``A`` (N, N), no self-loops."""
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float64)
        for p, c in self.bones:
            a[p, c] = a[c, p] = 1.0
        return a

    def laplacian(self) -> np.ndarray:
        """Combinatorial Laplacian ``L = D - A`` (N, N)."""
        a = self.adjacency()
        return np.diag(a.sum(1)) - a

    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues ``lambda`` (N,) ascending and orthonormal eigenvectors ``U`` (N, N) of ``L``.

        The sign of each eigenvector is fixed (largest-magnitude entry positive) so that figures and
        checkpoints are reproducible across LAPACK builds.
        """
        lam, u = np.linalg.eigh(self.laplacian())
        lam = np.clip(lam, 0.0, None)  # remove -1e-16 round-off of the zero eigenvalue
        idx = np.argmax(np.abs(u), axis=0)
        signs = np.sign(u[idx, np.arange(u.shape[1])])
        signs[signs == 0] = 1.0
        return lam, u * signs

    def normalized_adjacency(self, self_loops: bool = True) -> np.ndarray:
        """``D^-1/2 (A + I) D^-1/2``: the propagation matrix of the spatial graph attention."""
        a = self.adjacency() + (np.eye(self.num_joints) if self_loops else 0.0)
        d = 1.0 / np.sqrt(a.sum(1))
        return a * d[:, None] * d[None, :]

    def bone_lengths(self, pose: np.ndarray) -> np.ndarray:
        """Bone lengths (..., num_bones) of poses (..., N, 3), in the order of :attr:`bones`."""
        p = np.asarray(pose)
        parents = [b[0] for b in self.bones]
        children = [b[1] for b in self.bones]
        return np.linalg.norm(p[..., children, :] - p[..., parents, :], axis=-1)


H36M17 = Skeleton(
    name="h36m17",
    joints=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    limbs=(1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16),
)

SKELETONS = {H36M17.name: H36M17}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None
