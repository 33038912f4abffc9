import numpy as np
import pytest

from poseprompt.core.skeleton import H36M17, Skeleton


def test_laplacian_is_degree_minus_adjacency():
    a = H36M17.adjacency()
    lap = H36M17.laplacian()
    assert a.shape == (17, 17) and np.allclose(a, a.T)
    assert a.sum() == 2 * 16  # a tree of 17 joints has 16 bones
    assert np.allclose(lap.sum(1), 0)
    assert lap[8, 8] == 4  # thorax: spine, neck, two shoulders


def test_spectrum_orthonormal_and_reconstructs():
    lam, u = H36M17.spectrum()
    lap = H36M17.laplacian()
    assert np.allclose(u.T @ u, np.eye(17), atol=1e-10)
    assert np.allclose(u @ np.diag(lam) @ u.T, lap, atol=1e-10)
    assert np.all(np.diff(lam) >= -1e-12)
    assert abs(lam[0]) < 1e-10 and lam[1] > 1e-3  # connected graph: one zero eigenvalue
    assert np.allclose(u[:, 0], 1 / np.sqrt(17))  # constant eigenvector, sign fixed positive


def test_flip_permutation_swaps_sides():
    perm = H36M17.flip_permutation
    assert perm[1] == 4 and perm[4] == 1 and perm[13] == 16 and perm[0] == 0
    assert np.array_equal(perm[perm], np.arange(17))


def test_normalized_adjacency_symmetric_with_unit_spectral_radius():
    a = H36M17.normalized_adjacency()
    assert np.allclose(a, a.T)
    assert np.isclose(np.linalg.eigvalsh(a).max(), 1.0)


@pytest.mark.parametrize("parents, msg", [((-1, 0, 5), "out of range"), ((-1, -1, 0), "exactly one root"),
                                          ((1, 2, 1), "exactly one root")])
def test_bad_skeletons_rejected(parents, msg):
    with pytest.raises(ValueError, match=msg):
        Skeleton("bad", ("a", "b", "c"), parents, (), ())


def test_any_skeleton_works():
    chain = Skeleton("chain", ("a", "b", "c", "d"), (-1, 0, 1, 2), (), ())
    lam, _ = chain.spectrum()
    # path graph P4: eigenvalues 2 - 2 cos(k pi / 4)
    assert np.allclose(lam, 2 - 2 * np.cos(np.arange(4) * np.pi / 4))
