"""Covering problems: exact answers checked by enumeration, greedy never better, gaps honest."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

import firegrid.spatial.siting.cover as cover_module
from firegrid.spatial.siting.cover import greedy_max_cover, max_cover, set_cover


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


# --- When HiGHS gives no answer, a worse one than greedy, or runs out of time -------------------
# Six demands; site 0 covers {0, 1, 2, 3}, site 1 {0, 1, 4}, site 2 {2, 3, 5}. With k = 2 greedy
# takes site 0 (4 demands) and then one more demand: 5; the optimum, sites 1 + 2, covers all 6.
TRAP = np.zeros((6, 3), bool)
TRAP[[0, 1, 2, 3], 0] = True
TRAP[[0, 1, 4], 1] = True
TRAP[[2, 3, 5], 2] = True


class _FakeHighs:
    """Stands in for firegrid.spatial.siting.cover._solve: a time-out (status 1) with a given point and bound."""

    def __init__(self, sites, dual=None):
        self.sites, self.dual, self.calls = sites, dual, 0

    def __call__(self, c, cons, time_limit_s, integral=True, presolve=True):
        self.calls += 1
        x = None
        if self.sites is not None:
            x = np.zeros(len(c))
            x[list(self.sites)] = 1.0
        return SimpleNamespace(x=x, status=1, mip_dual_bound=self.dual, fun=None)


def _check_max_cover_answer(sol, A, k):
    best = enumerate_max_cover(A, np.ones(len(A)), np.zeros(len(A), bool), k)
    assert best == 6
    # Feasible: at most k sites, and `covered` is what they cover.
    assert len(sol.selected) <= k
    assert (sol.covered == A[:, sol.selected].any(1)).all()
    assert sol.objective == sol.covered.sum()
    # Never worse than greedy (5 here), never better than the optimum.
    assert 5 <= sol.objective <= best
    assert not sol.optimal
    # The reported bound bounds the optimum, so the reported gap bounds the true gap.
    assert sol.bound >= best - 1e-9
    assert sol.gap == pytest.approx((sol.bound - sol.objective) / sol.objective)
    assert sol.gap >= (best - sol.objective) / sol.objective - 1e-12


def test_max_cover_without_a_solver_answer_falls_back_to_greedy(monkeypatch):
    fake = _FakeHighs(sites=None)
    monkeypatch.setattr("firegrid.spatial.siting.cover._solve", fake)
    sol = max_cover(TRAP, 2, method="exact")
    assert fake.calls == 1
    assert sol.method == "greedy" and sorted(sol.selected) in ([0, 1], [0, 2])
    _check_max_cover_answer(sol, TRAP, 2)


def test_max_cover_worse_than_greedy_keeps_the_greedy_sites(monkeypatch):
    # HiGHS stopped at site 2 alone (3 demands) with dual bound −6.5 (the MILP minimises −weight).
    monkeypatch.setattr("firegrid.spatial.siting.cover._solve", _FakeHighs(sites=[2], dual=-6.5))
    sol = max_cover(TRAP, 2, method="exact")
    assert sol.method == "milp" and sol.objective == 5 and 0 in sol.selected
    assert sol.bound == pytest.approx(6.5)
    assert sol.gap == pytest.approx((6.5 - 5) / 5)  # 0.3 ≥ the true gap (6 − 5) / 5 = 0.2
    _check_max_cover_answer(sol, TRAP, 2)


def test_max_cover_timed_out_with_a_good_answer_is_not_called_optimal(monkeypatch):
    # The time-out found the optimum (sites 1, 2) but without a dual bound: the LP bound is used.
    monkeypatch.setattr("firegrid.spatial.siting.cover._solve", _FakeHighs(sites=[1, 2], dual=None))
    sol = max_cover(TRAP, 2, method="exact")
    assert sol.method == "milp" and sorted(sol.selected) == [1, 2] and sol.objective == 6
    _check_max_cover_answer(sol, TRAP, 2)


def test_max_cover_real_highs_with_no_time_is_feasible_and_honest():
    sol = max_cover(TRAP, 2, method="exact", time_limit_s=0.0)
    best = 6
    assert 5 <= sol.objective <= best and len(sol.selected) <= 2
    assert sol.bound >= best - 1e-9
    if not sol.optimal:
        assert sol.gap >= (best - sol.objective) / sol.objective - 1e-12


# Set cover on the classic trap: greedy 3 sites, optimum 2 (sites 0 and 1).
def _set_cover_trap():
    A = np.zeros((8, 3), bool)
    A[:4, 0] = True
    A[4:, 1] = True
    A[[0, 1, 2, 4, 5], 2] = True
    return A


@pytest.mark.parametrize(
    ("sites", "dual", "method", "objective"),
    [
        (None, None, "greedy", 3),  # no answer in time: greedy's three sites
        ([0, 1, 2], 1.5, "milp", 3),  # an answer no better than greedy, dual bound 1.5 → 2
        ([0, 1], None, "milp", 2),  # the optimum, found but not proven: LP bound
    ],
)
def test_set_cover_time_out_paths(monkeypatch, sites, dual, method, objective):
    A = _set_cover_trap()
    monkeypatch.setattr("firegrid.spatial.siting.cover._solve", _FakeHighs(sites=sites, dual=dual))
    sol = set_cover(A, method="exact")
    best = enumerate_set_cover(A, np.zeros(len(A), bool))
    assert best == 2
    assert sol.method == method and sol.objective == objective and not sol.optimal
    assert len(sol.selected) == objective and sol.covered.all()  # feasible: every demand
    assert A[:, sol.selected].any(1).all()
    assert sol.objective <= 3  # never worse than greedy
    assert sol.bound <= best  # a lower bound on the optimum count
    assert sol.gap == pytest.approx((sol.objective - sol.bound) / sol.objective)
    assert sol.gap >= (sol.objective - best) / sol.objective - 1e-12


class _FakeHighsMilpOnly(_FakeHighs):
    """Times out on the MILP only; LP relaxations (integral=False) go to the real HiGHS."""

    def __call__(self, c, cons, time_limit_s, integral=True, presolve=True):
        if integral is False:
            return _REAL_SOLVE(c, cons, time_limit_s, integral=False, presolve=presolve)
        return super().__call__(c, cons, time_limit_s, integral, presolve)


_REAL_SOLVE = cover_module._solve  # captured before any test replaces it


@pytest.mark.parametrize(
    ("sites", "dual", "method"),
    [
        (None, None, "greedy"),  # no answer in time
        ([], -6.5, "milp"),  # an empty answer (0 covered) with dual bound 6.5: greedy stands
    ],
)
def test_capacitated_max_cover_time_out_paths(monkeypatch, sites, dual, method):
    from firegrid.spatial.siting.cover import max_cover_capacitated

    # Capacity 10 per site never binds on six unit demands: the optimum is TRAP's, 6.
    monkeypatch.setattr(
        "firegrid.spatial.siting.cover._solve", _FakeHighsMilpOnly(sites=sites, dual=dual)
    )
    sol = max_cover_capacitated(TRAP, 2, capacity=10.0, method="exact")
    assert sol.method == method and not sol.optimal
    assert sol.objective == 5  # greedy's answer: never worse
    assert len(sol.selected) <= 2
    served = sol.assignment >= 0
    assert (sol.covered == served).all()
    assert all(TRAP[i, sol.assignment[i]] for i in np.flatnonzero(served))  # feasible pairs
    assert set(sol.assignment[served]) <= set(sol.selected)
    assert sol.bound >= 6 - 1e-9  # bounds the optimum
    assert sol.gap >= (6 - 5) / 5 - 1e-12


# ---------------------------------------------------------------------- one "auto" rule
def test_auto_method_is_one_rule_per_problem_kind():
    from firegrid.spatial.siting.cover import (
        AUTO_EXACT_MAX_PAIRS,
        AUTO_EXACT_MAX_PAIRS_CAPACITATED,
        auto_bound,
        auto_method,
    )

    assert auto_method("auto", AUTO_EXACT_MAX_PAIRS) == "exact"
    assert auto_method("auto", AUTO_EXACT_MAX_PAIRS + 1) == "greedy"
    assert auto_method("auto", AUTO_EXACT_MAX_PAIRS_CAPACITATED, capacitated=True) == "exact"
    assert auto_method("auto", AUTO_EXACT_MAX_PAIRS_CAPACITATED + 1, capacitated=True) == "greedy"
    assert AUTO_EXACT_MAX_PAIRS_CAPACITATED < AUTO_EXACT_MAX_PAIRS
    # An explicit choice stands whatever the size.
    assert auto_method("exact", 10**9) == "exact" and auto_method("greedy", 1) == "greedy"
    assert auto_bound(AUTO_EXACT_MAX_PAIRS) == "lp"
    assert auto_bound(AUTO_EXACT_MAX_PAIRS + 1) == "lagrangian"
    with pytest.raises(ValueError, match="method"):
        auto_method("milp", 1)


def test_every_solver_follows_the_auto_rule(monkeypatch):
    """max_cover, set_cover and the capacitated pair decide "auto" by the same open pairs."""
    from firegrid.spatial.siting.cover import (
        max_cover_capacitated,
        open_pairs,
        set_cover_capacitated,
    )

    rng = np.random.default_rng(5)
    A = rng.random((30, 12)) < 0.2
    pre = np.zeros(30, bool)
    pre[:10] = True
    pairs = open_pairs(A, pre)
    assert pairs == int(A[10:].sum()) and open_pairs(A) == int(A.sum())
    for limit, expected in ((pairs, "milp"), (pairs - 1, "greedy")):
        monkeypatch.setattr(cover_module, "AUTO_EXACT_MAX_PAIRS", limit)
        assert max_cover(A, 2, existing_covered=pre).method == expected
        assert set_cover(A, existing_covered=pre).method == expected
    # Capacitated: pairs still open to assignment; greedy is used beyond the limit.
    monkeypatch.setattr(cover_module, "AUTO_EXACT_MAX_PAIRS_CAPACITATED", 0)
    assert max_cover_capacitated(A, 2, capacity=3, existing_covered=pre).method == "greedy"
    assert set_cover_capacitated(A, capacity=3, existing_covered=pre).method == "greedy"
