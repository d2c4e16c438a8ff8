"""Covering problems for siting: set cover and maximal coverage, exact (MILP) or greedy.

Both problems take a boolean coverage matrix ``A`` (demands × candidate sites; ``A[i, j]``
means site ``j`` would cover demand ``i``, e.g. reach building ``i`` within 3 minutes or within
150 m of hose) and return a :class:`CoverSolution`. Exact solutions use HiGHS through
:func:`scipy.optimize.milp` under a time limit; the greedy heuristic is the fallback for large
cases and always reports its gap against the LP-relaxation bound, which bounds the true
optimality gap from above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

# Above this many nonzeros the MILP is not attempted under method="auto".
AUTO_EXACT_MAX_NNZ = 5_000_000


@dataclass(frozen=True)
class CoverSolution:
    """Result of a covering problem.

    Attributes
    ----------
    selected
        Indices of the chosen candidate sites, in the order chosen (greedy) or ascending (MILP).
    covered
        Boolean per demand: covered by an existing facility or a chosen site.
    objective
        Number of sites chosen (set cover) or weight covered (maximal coverage).
    bound
        Best proven bound on the optimum: a lower bound for set cover, an upper bound for
        maximal coverage (LP relaxation or the MILP's dual bound).
    gap
        Relative optimality gap ``|objective - bound| / max(|objective|, tiny)``; 0 when proven optimal.
    method
        ``"milp"`` or ``"greedy"``.
    optimal
        The solution is proven optimal.
    uncoverable
        Boolean per demand that no candidate (and no existing facility) covers.
    """

    selected: np.ndarray
    covered: np.ndarray
    objective: float
    bound: float
    gap: float
    method: str
    optimal: bool
    uncoverable: np.ndarray


def _as_csc(cover) -> sp.csc_matrix:
    A = sp.csc_matrix(cover, dtype=bool)
    A.eliminate_zeros()
    return A


def _rel_gap(objective: float, bound: float) -> float:
    return float(abs(objective - bound) / max(abs(objective), 1e-9))


def _reduce(A: sp.csc_matrix, need: np.ndarray, weights: np.ndarray):
    """Keep the demands still needing cover, merge identical rows (weights add up)."""
    rows = np.flatnonzero(need)
    sub = sp.csr_matrix(A[rows], dtype=float)
    sub.sort_indices()
    # Rows with the same candidate set get the same random-projection signature (sorted
    # indices make the float sums bit-identical); a collision of distinct sets is ~2**-52.
    signature = np.column_stack(
        [sub @ np.random.default_rng(0).random(sub.shape[1]), np.diff(sub.indptr)]
    )
    _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    merged_w = np.bincount(inverse.ravel(), weights=weights[rows], minlength=len(first))
    return sp.csr_matrix(sub[first], dtype=float), merged_w


def _prepare(cover, weights, existing_covered):
    A = _as_csc(cover)
    n = A.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights has {w.shape[0]} entries for {n} demands")
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    pre = np.zeros(n, bool) if existing_covered is None else np.asarray(existing_covered, bool)
    coverable = np.asarray(A.sum(axis=1)).ravel() > 0
    uncoverable = ~pre & ~coverable
    return A, w, pre, uncoverable


def _covered_by(A: sp.csc_matrix, selected: np.ndarray) -> np.ndarray:
    if len(selected) == 0:
        return np.zeros(A.shape[0], bool)
    return np.asarray(A[:, selected].sum(axis=1)).ravel() > 0


def greedy_max_cover(
    cover, k: int, *, weights=None, existing_covered=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``k`` sites one at a time, each adding the most uncovered weight.

    Returns the chosen site indices in order and the weight each one added (marginal gains).
    Stops early when no site adds anything.
    """
    A, w, pre, _ = _prepare(cover, weights, existing_covered)
    remaining = np.where(pre, 0.0, w)
    At = sp.csr_matrix(A.T, dtype=float)
    chosen, gains = [], []
    for _ in range(int(k)):
        scores = At @ remaining
        j = int(np.argmax(scores))
        if scores[j] <= 0:
            break
        chosen.append(j)
        gains.append(float(scores[j]))
        rows = A.indices[A.indptr[j] : A.indptr[j + 1]]
        remaining[rows] = 0.0
    return np.array(chosen, dtype=int), np.array(gains)


def _lp_bound_max_cover(R: sp.csr_matrix, w: np.ndarray, k: int) -> float:
    m, n = R.shape
    # variables [x (n), y (m)]; max w·y s.t. y - R x <= 0, sum x <= k, 0 <= x, y <= 1
    c = np.concatenate([np.zeros(n), -w])
    A_ub = sp.vstack(
        [
            sp.hstack([-R, sp.identity(m)]),
            sp.hstack([sp.csr_matrix(np.ones((1, n))), sp.csr_matrix((1, m))]),
        ]
    )
    b_ub = np.concatenate([np.zeros(m), [k]])
    res = linprog(c, A_ub=A_ub.tocsr(), b_ub=b_ub, bounds=(0, 1), method="highs")
    return float(-res.fun) if res.status == 0 else float(w.sum())


def max_cover(
    cover,
    k: int,
    *,
    weights=None,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
) -> CoverSolution:
    """Choose ``k`` new sites to maximise the weight of demands covered.

    Parameters
    ----------
    cover
        Sparse or dense boolean matrix, demands × candidate sites.
    k
        Number of new sites.
    weights
        Weight per demand (e.g. 1 per building, or its risk index); default 1.
    existing_covered
        Boolean per demand already covered by existing facilities (they count, and no new site
        is credited for them).
    method
        ``"exact"`` (MILP), ``"greedy"``, or ``"auto"`` (MILP unless the reduced problem is
        very large).
    time_limit_s
        Wall-clock limit for the MILP; on timeout the best solution found is returned with the
        solver's gap.
    """
    A, w, pre, uncoverable = _prepare(cover, weights, existing_covered)
    need = ~pre & ~uncoverable
    base = float(w[pre].sum())
    if k <= 0 or not need.any():
        return CoverSolution(
            np.array([], int), pre.copy(), base, base, 0.0, "exact", True, uncoverable
        )
    R, rw = _reduce(A, need, w)
    g_sel, g_gain = greedy_max_cover(A, k, weights=w, existing_covered=pre | uncoverable)
    g_obj = base + float(g_gain.sum())
    exact = method == "exact" or (method == "auto" and R.nnz <= AUTO_EXACT_MAX_NNZ)
    if not exact:
        bound = base + _lp_bound_max_cover(R, rw, k)
        return CoverSolution(
            g_sel,
            pre | _covered_by(A, g_sel),
            g_obj,
            bound,
            _rel_gap(g_obj, bound),
            "greedy",
            np.isclose(g_obj, bound),
            uncoverable,
        )
    m, n = R.shape
    c = np.concatenate([np.zeros(n), -rw])
    cons = [
        LinearConstraint(sp.hstack([-R, sp.identity(m)]).tocsr(), -np.inf, 0.0),
        LinearConstraint(sp.csr_matrix(np.concatenate([np.ones(n), np.zeros(m)])[None, :]), 0, k),
    ]
    integrality = np.concatenate([np.ones(n), np.zeros(m)])  # y is integral at the optimum
    res = milp(
        c,
        constraints=cons,
        integrality=integrality,
        bounds=Bounds(0, 1),
        options={"time_limit": float(time_limit_s), "disp": False},
    )
    if res.x is None:  # no feasible point in time: the greedy answer stands
        bound = base + _lp_bound_max_cover(R, rw, k)
        return CoverSolution(
            g_sel,
            pre | _covered_by(A, g_sel),
            g_obj,
            bound,
            _rel_gap(g_obj, bound),
            "greedy",
            False,
            uncoverable,
        )
    sel = np.flatnonzero(res.x[:n] > 0.5)
    covered = pre | _covered_by(A, sel)
    obj = float(w[covered].sum())
    if obj < g_obj:  # a time-limited MILP can trail the greedy start
        sel, covered, obj = g_sel, pre | _covered_by(A, g_sel), g_obj
    optimal = res.status == 0
    dual = getattr(res, "mip_dual_bound", None)
    bound = (
        obj
        if optimal
        else base
        + (
            -float(dual)
            if dual is not None and np.isfinite(dual)
            else _lp_bound_max_cover(R, rw, k)
        )
    )
    return CoverSolution(
        sel,
        covered,
        obj,
        bound,
        0.0 if optimal else _rel_gap(obj, bound),
        "milp",
        optimal,
        uncoverable,
    )


def greedy_set_cover(cover, *, existing_covered=None) -> np.ndarray:
    """Chvátal's greedy set cover: repeatedly the site covering most still-uncovered demands."""
    A, _, pre, uncoverable = _prepare(cover, None, existing_covered)
    sel, _ = greedy_max_cover(A, A.shape[1], existing_covered=pre | uncoverable)
    return sel


def set_cover(
    cover,
    *,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
) -> CoverSolution:
    """The fewest new sites so that every coverable demand is covered.

    Demands no candidate can cover are reported in ``uncoverable`` and left out of the
    problem (they need another measure than a new site). Parameters as in :func:`max_cover`.
    """
    A, w, pre, uncoverable = _prepare(cover, None, existing_covered)
    need = ~pre & ~uncoverable
    if not need.any():
        return CoverSolution(
            np.array([], int), pre.copy(), 0.0, 0.0, 0.0, "exact", True, uncoverable
        )
    R, _ = _reduce(A, need, w)
    g_sel = greedy_set_cover(A, existing_covered=pre)
    g_obj = float(len(g_sel))
    m, n = R.shape
    exact = method == "exact" or (method == "auto" and R.nnz <= AUTO_EXACT_MAX_NNZ)

    def lp_bound() -> float:
        res = linprog(np.ones(n), A_ub=-R, b_ub=-np.ones(m), bounds=(0, 1), method="highs")
        return float(np.ceil(res.fun - 1e-9)) if res.status == 0 else 0.0

    if not exact:
        bound = lp_bound()
        return CoverSolution(
            g_sel,
            pre | _covered_by(A, g_sel),
            g_obj,
            bound,
            _rel_gap(g_obj, bound),
            "greedy",
            g_obj == bound,
            uncoverable,
        )
    res = milp(
        np.ones(n),
        constraints=[LinearConstraint(R, 1, np.inf)],
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        options={"time_limit": float(time_limit_s), "disp": False},
    )
    if res.x is None:
        bound = lp_bound()
        return CoverSolution(
            g_sel,
            pre | _covered_by(A, g_sel),
            g_obj,
            bound,
            _rel_gap(g_obj, bound),
            "greedy",
            False,
            uncoverable,
        )
    sel = np.flatnonzero(res.x > 0.5)
    if len(sel) > len(g_sel):
        sel = g_sel
    obj = float(len(sel))
    optimal = res.status == 0
    dual = getattr(res, "mip_dual_bound", None)
    bound = (
        obj
        if optimal
        else float(np.ceil(dual - 1e-9))
        if dual is not None and np.isfinite(dual)
        else lp_bound()
    )
    return CoverSolution(
        sel,
        pre | _covered_by(A, sel),
        obj,
        bound,
        0.0 if optimal else _rel_gap(obj, bound),
        "milp",
        optimal,
        uncoverable,
    )
