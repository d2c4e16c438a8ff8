"""Covering problems: exact answers checked by enumeration, greedy never better, gaps honest."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from spatial.cover import greedy_max_cover, max_cover, set_cover


def random_instance(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(6, 30)), int(rng.integers(3, 10))
    A = rng.random((m, n)) < 0.25
    w = rng.integers(1, 10, m).astype(float)
    pre = rng.random(m) < 0.1
    return A, w, pre, int(rng.integers(1, 4))


def enumerate_max_cover(A, w, pre, k):
    return max(
        w[pre | A[:, list(c)].any(1)].sum()
        for c in itertools.combinations(range(A.shape[1]), min(k, A.shape[1]))
    )


def enumerate_set_cover(A, pre):
    target = pre | A.any(1)
    for r in range(A.shape[1] + 1):
        if any(
            (pre | A[:, list(c)].any(1) == target).all()
            and (pre | A[:, list(c)].any(1)).sum() == target.sum()
            for c in itertools.combinations(range(A.shape[1]), r)
        ):
            return r


@pytest.mark.parametrize("seed", range(25))
def test_max_cover_exact_matches_enumeration_and_greedy_never_better(seed):
    A, w, pre, k = random_instance(seed)
    best = enumerate_max_cover(A, w, pre, k)
    exact = max_cover(sp.csr_matrix(A), k, weights=w, existing_covered=pre, method="exact")
    greedy = max_cover(A, k, weights=w, existing_covered=pre, method="greedy")
    assert exact.objective == pytest.approx(best) and exact.optimal and exact.gap == 0
    assert exact.objective == pytest.approx(w[exact.covered].sum())
    assert len(exact.selected) <= k
    assert greedy.objective <= best + 1e-9
    assert greedy.bound >= best - 1e-9  # the LP bound really bounds the optimum
    assert greedy.gap == pytest.approx((greedy.bound - greedy.objective) / greedy.objective)
    assert greedy.gap >= (best - greedy.objective) / greedy.objective - 1e-12


@pytest.mark.parametrize("seed", range(25))
def test_set_cover_exact_matches_enumeration(seed):
    A, _, pre, _ = random_instance(seed)
    best = enumerate_set_cover(A, pre)
    exact = set_cover(A, existing_covered=pre, method="exact")
    greedy = set_cover(A, existing_covered=pre, method="greedy")
    assert exact.objective == best
    assert greedy.objective >= exact.objective and greedy.bound <= best
    for sol in (exact, greedy):
        assert (sol.covered | sol.uncoverable).all()
        assert not (sol.covered & sol.uncoverable).any()


def test_greedy_is_suboptimal_on_the_classic_trap_and_reports_it():
    # Two sites split the demands evenly; a third covers slightly more than half of them.
    A = np.zeros((8, 3), bool)
    A[:4, 0] = True
    A[4:, 1] = True
    A[[0, 1, 2, 4, 5], 2] = True
    greedy = set_cover(A, method="greedy")
    exact = set_cover(A, method="exact")
    assert list(greedy.selected[:1]) == [2] and greedy.objective == 3
    assert exact.objective == 2 and sorted(exact.selected) == [0, 1]
    assert greedy.gap > 0


def test_greedy_marginal_gains_are_decreasing_and_sum_to_cover():
    A, w, pre, _ = random_instance(3)
    sel, gains = greedy_max_cover(A, 5, weights=w, existing_covered=pre)
    assert np.all(np.diff(gains) <= 1e-12)
    covered = pre | A[:, sel].any(1)
    assert w[covered].sum() == pytest.approx(w[pre].sum() + gains.sum())


def test_uncoverable_demands_reported_not_forced():
    A = np.array([[1, 0], [0, 0], [0, 1]], bool)
    sol = set_cover(A)
    assert sol.uncoverable.tolist() == [False, True, False] and sol.objective == 2
