"""Covering problems for siting: set cover and maximal coverage, exact (MILP) or greedy.

Both problems take a boolean coverage matrix ``A`` (demands × candidate sites; ``A[i, j]``
means site ``j`` would cover demand ``i``, e.g. reach building ``i`` within 3 minutes or within
150 m of hose) and return a :class:`CoverSolution`. Exact solutions use HiGHS through
:func:`scipy.optimize.milp` under a time limit; the greedy heuristic is the fallback for large
cases and always reports its gap against the LP-relaxation bound, which bounds the true
optimality gap from above. :func:`max_cover_capacitated` and :func:`set_cover_capacitated` add
site capacities (each demand assigned to one chosen site, sizes within its capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

# How method="auto" chooses between the MILP and greedy: by the size of the problem, counted
# as the (demand still needing cover, candidate site) pairs, one limit per problem kind
# (:func:`auto_method`).
#
# Uncapacitated (max_cover, set_cover): one binary per site, the pairs are the nonzeros of the
# coverage rows. Beyond a million HiGHS seldom closes even the root LP within a time limit of a
# minute (measured: 2.3 M pairs, 100,000 buildings x 5,000 candidates), so greedy with a
# Lagrangian bound is both faster and better. The demo district has about 0.1 M.
AUTO_EXACT_MAX_PAIRS = 1_000_000
# Capacitated (max_cover_capacitated, set_cover_capacitated): one binary per pair (the
# assignment), so the MILP stops paying off far earlier; above CAP_LP_MAX_PAIRS no LP bound
# either (measured: 170,000 pairs, the demo district, leave HiGHS without even the LP in 20 s).
AUTO_EXACT_MAX_PAIRS_CAPACITATED = 30_000
CAP_LP_MAX_PAIRS = 60_000
METHODS = ("auto", "exact", "greedy")


def auto_method(method: str, pairs: int, *, capacitated: bool = False) -> str:
    """The solver a covering problem of ``pairs`` open (demand, site) pairs runs.

    ``"auto"`` becomes ``"exact"`` (MILP) up to :data:`AUTO_EXACT_MAX_PAIRS` pairs
    (:data:`AUTO_EXACT_MAX_PAIRS_CAPACITATED` assignment pairs when ``capacitated``) and
    ``"greedy"`` beyond; ``"exact"`` and ``"greedy"`` stay as they are.

    Returns
    -------
    str
        ``"exact"`` or ``"greedy"``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    limit = AUTO_EXACT_MAX_PAIRS_CAPACITATED if capacitated else AUTO_EXACT_MAX_PAIRS
    return "exact" if pairs <= limit else "greedy"


def auto_bound(pairs: int) -> str:
    """The bound of an uncapacitated problem of ``pairs`` open pairs: ``"lp"`` where the MILP
    would run under ``"auto"``, ``"lagrangian"`` beyond (the LP is then as slow as the MILP)."""
    return "lp" if auto_method("auto", pairs) == "exact" else "lagrangian"


def open_pairs(cover, existing_covered=None) -> int:
    """(demand, site) pairs of ``cover`` (demands × sites) whose demand still needs cover."""
    A = sp.csr_matrix(cover, dtype=bool)
    per_row = np.diff(A.indptr)
    if existing_covered is None:
        return int(per_row.sum())
    return int(per_row[~np.asarray(existing_covered, bool)].sum())


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
        Boolean per demand that no candidate (and no existing facility) covers; in the
        capacitated problems also a demand larger than the capacity of every site covering it.
    assignment
        Capacitated problems only: per demand, the chosen site (index) it is assigned to, ``-1``
        if none (covered by an existing facility, or left out); ``None`` otherwise.
    """

    selected: np.ndarray
    covered: np.ndarray
    objective: float
    bound: float
    gap: float
    method: str
    optimal: bool
    uncoverable: np.ndarray
    assignment: np.ndarray | None = None


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


def prepare_cover(cover, weights=None, existing_covered=None):
    """The cover matrix (CSC, boolean), demand weights, demands already covered and demands no
    site covers, checked: ``weights`` non-negative, one per demand (ValueError otherwise)."""
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


def _greedy_solution(A, pre, selected, objective, bound, proven, uncoverable) -> CoverSolution:
    """The greedy answer with its bound; optimal only when ``proven`` and it meets the bound."""
    return CoverSolution(
        selected,
        pre | covered_by(A, selected),
        objective,
        bound,
        _rel_gap(objective, bound),
        "greedy",
        proven and bool(np.isclose(objective, bound)),
        uncoverable,
    )


def covered_by(A: sp.csc_matrix, selected: np.ndarray) -> np.ndarray:
    """Demands (rows of ``A``) that at least one of the ``selected`` sites covers."""
    if len(selected) == 0:
        return np.zeros(A.shape[0], bool)
    return np.asarray(A[:, selected].sum(axis=1)).ravel() > 0


def _solve(c, cons, time_limit_s, integral=True, presolve=True):
    """HiGHS on ``min c·x`` over [0, 1] under ``cons``; ``integral``: all, none (bool) or a
    per-variable integrality array."""
    if isinstance(integral, bool):
        integral = np.full(len(c), 1.0 if integral else 0.0)
    return milp(
        c,
        constraints=cons,
        integrality=integral,
        bounds=Bounds(0, 1),
        options={"time_limit": float(time_limit_s), "disp": False, "presolve": presolve},
    )


def greedy_max_cover(
    cover, k: int, *, weights=None, existing_covered=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``k`` sites one at a time, each adding the most uncovered weight.

    Returns the chosen site indices in order and the weight each one added (marginal gains).
    Stops early when no site adds anything.
    """
    A, w, pre, _ = prepare_cover(cover, weights, existing_covered)
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


def _lagrangian_max_cover(R: sp.csr_matrix, w: np.ndarray, k: int, lower: float,
                          iterations: int = 300) -> float:  # fmt: skip
    """Upper bound on max coverage by relaxing ``y_i <= sum_j R_ij x_j`` with ``u_i >= 0``.

    ``L(u) = sum_i max(0, w_i - u_i) + (sum of the k largest positive (R^T u)_j)`` bounds the
    optimum for every ``u >= 0`` (its minimum equals the LP bound); subgradient steps (Polyak,
    towards ``lower``) tighten it. One sparse product per step: cheap where the LP is not.
    ``u = w`` is the classic "k best single sites" bound, the starting point.
    """
    m, n = R.shape
    k = min(int(k), n)
    if k <= 0 or m == 0:
        return 0.0
    Rt = sp.csr_matrix(R.T)
    u = w.astype(float).copy()
    best = float(w.sum())
    theta, stall = 2.0, 0
    pick = np.zeros(n)
    for _ in range(int(iterations)):
        score = Rt @ u
        top = np.argpartition(-score, k - 1)[:k]
        top = top[score[top] > 0]
        val = float(np.maximum(w - u, 0.0).sum() + score[top].sum())
        if val < best:
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        if best - lower <= 1e-9 * max(1.0, abs(best)) or theta < 1e-4:
            break
        pick[:] = 0.0
        pick[top] = 1.0
        g = (R @ pick) - (w > u)
        norm = float(g @ g)
        if norm == 0:
            break
        u = np.clip(u - theta * (val - lower) / norm * g, 0.0, w)
    return best


def _lagrangian_set_cover(R: sp.csr_matrix, upper: float, iterations: int = 600) -> float:
    """Lower bound on set cover by relaxing ``R x >= 1`` with ``u_i >= 0`` (rounded up).

    ``L(u) = sum_i u_i + sum_j min(0, 1 - (R^T u)_j)`` bounds the optimum for every ``u >= 0``;
    started at ``u_i = min over sites j covering i of 1 / |S_j|`` and tightened by subgradient
    steps towards ``upper``.
    """
    m, n = R.shape
    if m == 0:
        return 0.0
    R = sp.csr_matrix(R > 0, dtype=float)
    Rt = sp.csr_matrix(R.T)
    size = np.asarray(R.sum(axis=0)).ravel()
    inv = np.where(size > 0, 1.0 / np.maximum(size, 1), np.inf)[R.indices]
    u = np.minimum.reduceat(inv, R.indptr[:-1]) if R.nnz else np.zeros(m)
    u = np.where(np.diff(R.indptr) > 0, u, 0.0)
    best = 0.0
    theta, stall = 2.0, 0
    for _ in range(int(iterations)):
        reduced = 1.0 - Rt @ u
        val = float(u.sum() + np.minimum(reduced, 0.0).sum())
        if val > best + 1e-9:
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        if np.ceil(best - 1e-9) >= upper or theta < 1e-3:
            break
        g = 1.0 - R @ (reduced < 0).astype(float)
        g[(u <= 0) & (g < 0)] = 0.0  # projected: multipliers at zero cannot go lower
        norm = float(g @ g)
        if norm == 0:
            break
        u = np.maximum(u + theta * (upper - val) / norm * g, 0.0)
    return float(np.ceil(best - 1e-9))


def max_cover(
    cover,
    k: int,
    *,
    weights=None,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
    presolve: bool = True,
    bound: str = "lp",
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
        ``"exact"`` (MILP), ``"greedy"``, or ``"auto"`` (MILP up to
        :data:`AUTO_EXACT_MAX_PAIRS` pairs of a site and a demand still needing cover, see
        :func:`auto_method`).
    time_limit_s
        Wall-clock limit for the MILP; on timeout the best solution found is returned with the
        solver's gap.
    presolve
        Let HiGHS presolve the MILP. Its dominated-column search can take longer than the solve
        itself on coverage matrices with many near-identical candidates (seconds against a
        fraction of a second); turning it off changes the time taken, never the answer.
    bound
        How the bound of a greedy or time-limited answer is computed: ``"lp"`` (the LP
        relaxation solved by HiGHS; tight, slow on very large problems) or ``"lagrangian"``
        (subgradient on the Lagrangian relaxation of the coverage rows, never below the LP
        bound, seconds on millions of pairs; also compared with the MILP's dual bound).
    """
    _check_bound_kind(bound)
    A, w, pre, uncoverable = prepare_cover(cover, weights, existing_covered)
    need = ~pre & ~uncoverable
    if k <= 0 or not need.any():
        base = float(w[pre].sum())
        return CoverSolution(
            np.array([], int), pre.copy(), base, base, 0.0, "exact", True, uncoverable
        )
    p = _MaxCover.of(A, w, pre, uncoverable, k, bound)
    if auto_method(method, open_pairs(A, ~need)) != "exact":
        return p.greedy(proven=True)
    res = p.solve(time_limit_s, presolve)
    if res.x is None:  # no feasible point in time: the greedy answer stands
        return p.greedy(proven=False)
    return p.from_milp(res)


def _check_bound_kind(bound: str) -> None:
    if bound not in ("lp", "lagrangian"):
        raise ValueError(f"bound must be 'lp' or 'lagrangian', got {bound!r}")


def _dual_bound(res) -> float | None:
    """The MILP's dual bound (objective of the relaxation it proved), None without one."""
    dual = getattr(res, "mip_dual_bound", None)
    return float(dual) if dual is not None and np.isfinite(dual) else None


@dataclass(frozen=True)
class _MaxCover:
    """A maximal-coverage problem with its greedy answer: demands still needing cover merged
    (``R``, ``rw``), the weight already covered (``base``)."""

    A: sp.csc_matrix
    w: np.ndarray
    pre: np.ndarray
    uncoverable: np.ndarray
    k: int
    bound_kind: str
    R: sp.csr_matrix
    rw: np.ndarray
    base: float
    g_sel: np.ndarray
    g_obj: float

    @classmethod
    def of(cls, A, w, pre, uncoverable, k, bound_kind) -> _MaxCover:
        R, rw = _reduce(A, ~pre & ~uncoverable, w)
        g_sel, g_gain = greedy_max_cover(A, k, weights=w, existing_covered=pre | uncoverable)
        base = float(w[pre].sum())
        g_obj = base + float(g_gain.sum())
        return cls(A, w, pre, uncoverable, k, bound_kind, R, rw, base, g_sel, g_obj)

    def relaxed_bound(self) -> float:
        """Upper bound from the relaxation ``bound_kind`` names."""
        if self.bound_kind == "lagrangian":
            return self.base + _lagrangian_max_cover(
                self.R, self.rw, self.k, self.g_obj - self.base
            )
        return self.base + _lp_bound_max_cover(self.R, self.rw, self.k)

    def greedy(self, proven: bool) -> CoverSolution:
        return _greedy_solution(
            self.A, self.pre, self.g_sel, self.g_obj, self.relaxed_bound(), proven,
            self.uncoverable,
        )  # fmt: skip

    def solve(self, time_limit_s: float, presolve: bool):
        """HiGHS on variables [x (sites), y (merged demands)]: max rw·y, y <= R x, sum x <= k."""
        m, n = self.R.shape
        c = np.concatenate([np.zeros(n), -self.rw])
        cons = [
            LinearConstraint(sp.hstack([-self.R, sp.identity(m)]).tocsr(), -np.inf, 0.0),
            LinearConstraint(
                sp.csr_matrix(np.concatenate([np.ones(n), np.zeros(m)])[None, :]), 0, self.k
            ),
        ]
        integrality = np.concatenate([np.ones(n), np.zeros(m)])  # y is integral at the optimum
        return _solve(c, cons, time_limit_s, integral=integrality, presolve=presolve)

    def from_milp(self, res) -> CoverSolution:
        n = self.R.shape[1]
        sel = np.flatnonzero(res.x[:n] > 0.5)
        covered = self.pre | covered_by(self.A, sel)
        obj = float(self.w[covered].sum())
        if obj < self.g_obj:  # a time-limited MILP can trail the greedy start
            sel, covered, obj = self.g_sel, self.pre | covered_by(self.A, self.g_sel), self.g_obj
        optimal = res.status == 0
        bound = obj if optimal else self._proven_bound(_dual_bound(res))
        gap = 0.0 if optimal else _rel_gap(obj, bound)
        return CoverSolution(sel, covered, obj, bound, gap, "milp", optimal, self.uncoverable)

    def _proven_bound(self, dual: float | None) -> float:
        """The best upper bound after a time-out: the MILP's dual bound where it has one
        (``"lp"``: else the LP's), with ``"lagrangian"`` the least of it and the Lagrangian."""
        if self.bound_kind == "lp":
            if dual is not None:
                return self.base - dual
            return self.base + _lp_bound_max_cover(self.R, self.rw, self.k)
        return min(self.relaxed_bound(), self.base - dual if dual is not None else np.inf)


def greedy_set_cover(cover, *, existing_covered=None) -> np.ndarray:
    """Chvátal's greedy set cover: repeatedly the site covering most still-uncovered demands."""
    A, _, pre, uncoverable = prepare_cover(cover, None, existing_covered)
    sel, _ = greedy_max_cover(A, A.shape[1], existing_covered=pre | uncoverable)
    return sel


def set_cover(
    cover,
    *,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
    presolve: bool = True,
    bound: str = "lp",
) -> CoverSolution:
    """The fewest new sites so that every coverable demand is covered.

    Demands no candidate can cover are reported in ``uncoverable`` and left out of the
    problem (they need another measure than a new site). Parameters as in :func:`max_cover`
    (``bound="lagrangian"``: a Lagrangian lower bound, rounded up, instead of the LP's).
    """
    _check_bound_kind(bound)
    A, w, pre, uncoverable = prepare_cover(cover, None, existing_covered)
    need = ~pre & ~uncoverable
    if not need.any():
        return CoverSolution(
            np.array([], int), pre.copy(), 0.0, 0.0, 0.0, "exact", True, uncoverable
        )
    R, _ = _reduce(A, need, w)
    g_sel = greedy_set_cover(A, existing_covered=pre)
    g_obj = float(len(g_sel))
    if auto_method(method, open_pairs(A, ~need)) != "exact":
        lower = _set_cover_bound(R, g_obj, bound)
        return _greedy_solution(A, pre, g_sel, g_obj, lower, True, uncoverable)
    res = _solve(np.ones(R.shape[1]), [LinearConstraint(R, 1, np.inf)], time_limit_s,
                 presolve=presolve)  # fmt: skip
    if res.x is None:
        lower = _set_cover_bound(R, g_obj, bound)
        return _greedy_solution(A, pre, g_sel, g_obj, lower, False, uncoverable)
    sel = np.flatnonzero(res.x > 0.5)
    if len(sel) > len(g_sel):
        sel = g_sel
    obj = float(len(sel))
    optimal = res.status == 0
    lower = obj if optimal else _set_cover_proven_bound(R, g_obj, bound, _dual_bound(res))
    gap = 0.0 if optimal else _rel_gap(obj, lower)
    return CoverSolution(
        sel, pre | covered_by(A, sel), obj, lower, gap, "milp", optimal, uncoverable
    )


def _set_cover_bound(R: sp.csr_matrix, upper: float, kind: str) -> float:
    """Lower bound on the fewest sites covering every row of ``R``: the LP relaxation or the
    Lagrangian (``kind``), rounded up."""
    if kind == "lagrangian":
        return _lagrangian_set_cover(R, upper)
    m, n = R.shape
    res = linprog(np.ones(n), A_ub=-R, b_ub=-np.ones(m), bounds=(0, 1), method="highs")
    return float(np.ceil(res.fun - 1e-9)) if res.status == 0 else 0.0


def _set_cover_proven_bound(R: sp.csr_matrix, upper: float, kind: str, dual: float | None) -> float:
    """The best lower bound after a time-out: the MILP's dual bound (rounded up) where it has
    one (``"lp"``: else the LP's), with ``"lagrangian"`` the larger of it and the Lagrangian."""
    dual_sites = float(np.ceil(dual - 1e-9)) if dual is not None else None
    if kind == "lp":
        return dual_sites if dual_sites is not None else _set_cover_bound(R, upper, kind)
    return max(_set_cover_bound(R, upper, kind), dual_sites if dual_sites is not None else 0.0)


# ---------------------------------------------------------------------- capacitated variants
# Each demand i has a size d_i (1 per building, or its residents) and each site j a capacity
# C_j; a chosen site serves the demands assigned to it, at most C_j in total, and every demand
# goes to at most one site (single sourcing: one building, one responsible station). The MILP
# is the classic strong assignment model: x_j (open), z_ij (assign) binary, z_ij <= x_j,
# sum_i d_i z_ij <= C_j x_j, sum_j z_ij <= 1. Demands covered by existing facilities use none of
# the new sites' capacity.


@dataclass(frozen=True)
class _CapInstance:
    n_demands: int
    n_sites: int
    w: np.ndarray  # weight per demand
    d: np.ndarray  # size per demand
    C: np.ndarray  # capacity per site
    pre: np.ndarray
    uncoverable: np.ndarray
    rows: np.ndarray  # pairs (demand, site) still open to assignment, sorted by site
    cols: np.ndarray


def _prepare_capacitated(cover, capacity, demand, weights, existing_covered) -> _CapInstance:
    A, w, pre, _ = prepare_cover(cover, weights, existing_covered)
    m, n = A.shape
    d = np.ones(m) if demand is None else np.asarray(demand, dtype=float)
    if d.shape != (m,):
        raise ValueError(f"demand has {d.shape[0]} entries for {m} demands")
    if not (np.isfinite(d) & (d >= 0)).all():
        raise ValueError("demand sizes must be finite and non-negative")
    C = np.broadcast_to(np.asarray(capacity, dtype=float), (n,)).copy()
    if (np.isnan(C) | (C < 0)).any():
        raise ValueError("capacities must be non-negative")
    coo = A.tocoo()
    keep = ~pre[coo.row] & (d[coo.row] <= C[coo.col])
    rows = coo.row[keep].astype(np.int64)
    cols = coo.col[keep].astype(np.int64)
    order = np.lexsort((rows, cols))
    rows, cols = rows[order], cols[order]
    assignable = np.zeros(m, bool)
    assignable[rows] = True
    return _CapInstance(m, n, w, d, C, pre, ~pre & ~assignable, rows, cols)


def _greedy_capacitated(inst: _CapInstance, k: int, w: np.ndarray):
    """Open up to ``k`` sites one at a time, each filled with the best-ratio (w/d) demands left.

    Returns (selected, gains, assignment). Each site is filled greedily by weight per unit size
    (prefix of the ratio order that fits), so a gain is feasible, not necessarily the best fill.
    """
    rows, cols = inst.rows, inst.cols
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(inst.d[rows] > 0, w[rows] / inst.d[rows], np.inf)
    order = np.lexsort((inst.d[rows], -ratio, cols))  # per site: best ratio, then smallest first
    r, c = rows[order], cols[order]
    first = np.ones(len(c), bool)
    first[1:] = c[1:] != c[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))
    remaining = np.zeros(inst.n_demands, bool)
    remaining[rows] = True
    is_open = np.zeros(inst.n_sites, bool)
    assignment = np.full(inst.n_demands, -1, dtype=np.int64)
    chosen, gains = [], []
    for _ in range(int(k)):
        active = remaining[r] & ~is_open[c]
        size = np.where(active, inst.d[r], 0.0)
        cum = np.cumsum(size)
        # Size used within the site's own list up to and including this pair.
        within = cum - (cum[group_start] - size[group_start])
        take = active & (within <= inst.C[c] * (1 + 1e-12))
        gain = np.bincount(c[take], weights=w[r[take]], minlength=inst.n_sites)
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        served = r[take & (c == j)]
        assignment[served] = j
        remaining[served] = False
        is_open[j] = True
        chosen.append(j)
        gains.append(float(gain[j]))
    return np.array(chosen, dtype=int), np.array(gains), assignment


def _cap_model(inst: _CapInstance):
    """Variables [x (sites used), z (pairs)] and the shared constraints of the assignment model."""
    rows, cols = inst.rows, inst.cols
    sites, col_idx = np.unique(cols, return_inverse=True)
    dem, row_idx = np.unique(rows, return_inverse=True)
    n, p = len(sites), len(rows)
    pair = np.arange(p)
    # sum_j z_ij <= 1 for each demand
    one = sp.csr_matrix((np.ones(p), (row_idx, n + pair)), shape=(len(dem), n + p))
    # sum_i d_i z_ij - C_j x_j <= 0 for each site
    cap = sp.csr_matrix(
        (
            np.concatenate([inst.d[rows], -inst.C[sites]]),
            (np.concatenate([col_idx, np.arange(n)]), np.concatenate([n + pair, np.arange(n)])),
        ),
        shape=(n, n + p),
    )
    # z_ij - x_j <= 0 for each pair (the strong link; also binds zero-size demands)
    link = sp.csr_matrix(
        (
            np.concatenate([np.ones(p), -np.ones(p)]),
            (np.concatenate([pair, pair]), np.concatenate([n + pair, col_idx])),
        ),
        shape=(p, n + p),
    )
    cons = [
        LinearConstraint(one, -np.inf, 1.0),
        LinearConstraint(cap, -np.inf, 0.0),
        LinearConstraint(link, -np.inf, 0.0),
    ]
    return sites, n, p, cons


def _cap_solution_parts(inst, sites, n, x_z):
    x = x_z[:n] > 0.5
    z = x_z[n:] > 0.5
    assignment = np.full(inst.n_demands, -1, dtype=np.int64)
    assignment[inst.rows[z]] = inst.cols[z]
    return np.sort(sites[x]), assignment


def _cap_knapsack_bound(inst: _CapInstance, k: int, w: np.ndarray) -> float:
    """Upper bound on the weight ``k`` capacitated sites can serve: the sum of the ``k`` best
    single-site fractional knapsacks (no site serves more than its own knapsack optimum)."""
    rows, cols = inst.rows, inst.cols
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(inst.d[rows] > 0, w[rows] / inst.d[rows], np.inf)
    order = np.lexsort((inst.d[rows], -ratio, cols))
    r, c = rows[order], cols[order]
    first = np.ones(len(c), bool)
    first[1:] = c[1:] != c[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))
    size = inst.d[r]
    cum = np.cumsum(size)
    before = cum - size - (cum[start] - size[start])
    room = np.clip(inst.C[c] - before, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(size > 0, np.clip(room / size, 0.0, 1.0), 1.0)
    value = np.bincount(c, weights=w[r] * frac, minlength=inst.n_sites)
    k = min(int(k), inst.n_sites)
    top = float(np.sort(value)[::-1][:k].sum())
    return min(top, float(w[np.unique(rows)].sum()))


def _cap_count_bound(inst: _CapInstance, served: int) -> float:
    """Lower bound on the sites of any solution serving ``served`` demands: enough of the
    largest capacities to hold the ``served`` smallest demands."""
    if served <= 0:
        return 0.0
    need = float(np.sort(inst.d[np.unique(inst.rows)])[:served].sum())
    caps = np.cumsum(np.sort(inst.C[np.unique(inst.cols)])[::-1])
    return float(min(np.searchsorted(caps, need - 1e-9) + 1, len(caps))) if need > 0 else 1.0


def max_cover_capacitated(
    cover,
    k: int,
    *,
    capacity,
    demand=None,
    weights=None,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
) -> CoverSolution:
    """Choose ``k`` new sites, each serving at most its capacity, to maximise weight served.

    Every demand is assigned to at most one chosen site that covers it (single sourcing), and
    the sizes assigned to a site add up to at most its capacity.

    Parameters
    ----------
    cover
        Sparse or dense boolean matrix, demands × candidate sites.
    k
        Number of new sites.
    capacity
        Capacity of each site (scalar or one per site), in the unit of ``demand``.
    demand
        Size of each demand (e.g. 1 per building, or its residents); default 1.
    weights
        Weight per demand to maximise (default 1).
    existing_covered
        Demands already covered by existing facilities: counted, and not using new capacity.
    method, time_limit_s
        As in :func:`max_cover`; ``"auto"`` uses the MILP up to
        ``AUTO_EXACT_MAX_PAIRS_CAPACITATED`` demand-site pairs (:func:`auto_method`).

    Returns
    -------
    CoverSolution
        With ``assignment``; ``bound`` is the least of the MILP dual bound, the LP-relaxation
        bound (up to ``CAP_LP_MAX_PAIRS`` pairs) and the sum of the ``k`` best single-site
        fractional knapsacks. When greedy meets that last bound it is returned as optimal.
    """
    inst = _prepare_capacitated(cover, capacity, demand, weights, existing_covered)
    w, pre = inst.w, inst.pre
    base = float(w[pre].sum())
    if k <= 0 or len(inst.rows) == 0:
        return CoverSolution(
            np.array([], int), pre.copy(), base, base, 0.0, "exact", True, inst.uncoverable,
            np.full(inst.n_demands, -1, dtype=np.int64),
        )  # fmt: skip
    p = _CapMaxCover.of(inst, k, time_limit_s)
    exact = auto_method(method, len(inst.rows), capacitated=True) == "exact"
    if not exact or p.g_obj >= p.cheap * (1 - 1e-12):  # greedy proven optimal: nothing to solve
        return p.greedy()
    res = _solve(p.c, p.cons, time_limit_s)
    if res.x is None:
        return p.greedy()
    return p.from_milp(res)


@dataclass(frozen=True)
class _CapMaxCover:
    """A capacitated maximal-coverage problem: the assignment model (``c``, ``cons``), its
    greedy answer and the cheap knapsack bound."""

    inst: _CapInstance
    k: int
    time_limit_s: float
    base: float
    sites: np.ndarray
    n: int
    c: np.ndarray
    cons: list
    g_sel: np.ndarray
    g_obj: float
    g_assign: np.ndarray
    cheap: float

    @classmethod
    def of(cls, inst: _CapInstance, k: int, time_limit_s: float) -> _CapMaxCover:
        w = inst.w
        base = float(w[inst.pre].sum())
        g_sel, g_gain, g_assign = _greedy_capacitated(inst, k, w)
        sites, n, p, cons = _cap_model(inst)
        c = np.concatenate([np.zeros(n), -w[inst.rows]])
        at_most_k = sp.csr_matrix(np.r_[np.ones(n), np.zeros(p)][None, :])
        cons = cons + [LinearConstraint(at_most_k, 0, k)]
        cheap = base + _cap_knapsack_bound(inst, k, w)
        return cls(inst, k, time_limit_s, base, sites, n, c, cons, g_sel,
                   base + float(g_gain.sum()), g_assign, cheap)  # fmt: skip

    def lp_bound(self) -> float:
        """The least of the LP relaxation (up to ``CAP_LP_MAX_PAIRS`` pairs) and the knapsack
        bound."""
        if len(self.inst.rows) > CAP_LP_MAX_PAIRS:
            return self.cheap
        res = _solve(self.c, self.cons, self.time_limit_s, integral=False)
        return min(self.cheap, self.base + float(-res.fun)) if res.status == 0 else self.cheap

    def greedy(self) -> CoverSolution:
        bound = self.lp_bound()
        return CoverSolution(
            self.g_sel, self.inst.pre | (self.g_assign >= 0), self.g_obj, bound,
            _rel_gap(self.g_obj, bound), "greedy", bool(self.g_obj >= bound * (1 - 1e-12)),
            self.inst.uncoverable, self.g_assign,
        )  # fmt: skip

    def from_milp(self, res) -> CoverSolution:
        inst = self.inst
        sel, assign = _cap_solution_parts(inst, self.sites, self.n, res.x)
        obj = float(inst.w[inst.pre | (assign >= 0)].sum())
        if obj < self.g_obj:  # a time-limited MILP can trail the greedy start
            sel, assign, obj = self.g_sel, self.g_assign, self.g_obj
        optimal = res.status == 0
        dual = _dual_bound(res)
        if optimal:
            bound = obj
        elif dual is not None:
            bound = min(self.cheap, self.base - dual)
        else:
            bound = self.lp_bound()
        return CoverSolution(
            sel, inst.pre | (assign >= 0), obj, bound, 0.0 if optimal else _rel_gap(obj, bound),
            "milp", optimal, inst.uncoverable, assign,
        )  # fmt: skip


def set_cover_capacitated(
    cover,
    *,
    capacity,
    demand=None,
    existing_covered=None,
    method: str = "auto",
    time_limit_s: float = 60.0,
) -> CoverSolution:
    """The fewest new sites, each serving at most its capacity, to serve every demand they can.

    Lexicographic objective: first assign as many demands as possible (all of them unless the
    capacities near some cluster run out), then use the fewest sites. Demands larger than every
    covering site's capacity, or covered by no site, are ``uncoverable``; demands left over for
    lack of joint capacity are neither ``covered`` nor ``uncoverable``.

    Parameters
    ----------
    cover, capacity, demand, existing_covered, method, time_limit_s
        As in :func:`max_cover_capacitated`.

    Returns
    -------
    CoverSolution
        ``objective`` is the number of sites; ``bound`` a lower bound on the number of sites of
        any solution serving at least as many demands (LP relaxation rounded up, or the fewest
        largest capacities holding the smallest demands where the LP is too large).
    """
    inst = _prepare_capacitated(cover, capacity, demand, None, existing_covered)
    pre = inst.pre
    none = np.full(inst.n_demands, -1, dtype=np.int64)
    if len(inst.rows) == 0:
        return CoverSolution(
            np.array([], int), pre.copy(), 0.0, 0.0, 0.0, "exact", True, inst.uncoverable, none
        )
    g_sel, _, g_assign = _greedy_capacitated(inst, inst.n_sites, np.ones(inst.n_demands))
    model = _cap_model(inst)
    _, n, p, cons = model
    if auto_method(method, p, capacitated=True) != "exact":
        return _cap_count_solution(inst, model, g_sel, g_assign, "greedy", False, time_limit_s)
    # One unserved demand costs more than opening every site: serving comes first.
    penalty = float(n + 1)
    res = _solve(np.r_[np.ones(n), -penalty * np.ones(p)], cons, time_limit_s)
    if res.x is None:
        return _cap_count_solution(inst, model, g_sel, g_assign, "greedy", False, time_limit_s)
    sel, assign = _cap_solution_parts(inst, model[0], n, res.x)
    served, g_served = (assign >= 0).sum(), (g_assign >= 0).sum()
    if served < g_served or (served == g_served and len(sel) > len(g_sel)):
        return _cap_count_solution(inst, model, g_sel, g_assign, "milp", False, time_limit_s)
    return _cap_count_solution(inst, model, sel, assign, "milp", res.status == 0, time_limit_s)


def _cap_count_solution(
    inst: _CapInstance, model, sel, assign, method_name: str, optimal: bool, time_limit_s: float
) -> CoverSolution:
    """A capacitated set-cover answer with its lower bound (:func:`_cap_count_lp_bound`)."""
    obj = float(len(sel))
    served = int((assign >= 0).sum())
    bound = obj if optimal else _cap_count_lp_bound(inst, model, served, time_limit_s)
    # The bound holds for solutions serving at least as many demands: it proves optimality
    # only when every assignable demand is served.
    n_assignable = int((~inst.pre & ~inst.uncoverable).sum())
    optimal = optimal or (obj == bound and served == n_assignable)
    return CoverSolution(
        sel, inst.pre | (assign >= 0), obj, bound, 0.0 if optimal else _rel_gap(obj, bound),
        method_name, optimal, inst.uncoverable, assign,
    )  # fmt: skip


def _cap_count_lp_bound(inst: _CapInstance, model, served: int, time_limit_s: float) -> float:
    """Lower bound on the sites of any solution serving ``served`` demands: the LP relaxation
    rounded up (up to ``CAP_LP_MAX_PAIRS`` pairs) or :func:`_cap_count_bound`."""
    _, n, p, cons = model
    cheap = _cap_count_bound(inst, served)
    if p > CAP_LP_MAX_PAIRS:
        return cheap
    more = LinearConstraint(sp.csr_matrix(np.r_[np.zeros(n), np.ones(p)][None, :]), served)
    res = _solve(np.r_[np.ones(n), np.zeros(p)], cons + [more], time_limit_s, False)
    return max(cheap, float(np.ceil(res.fun - 1e-9))) if res.status == 0 else cheap
