"""The horizon rule of region runs: what lies beyond the longest target is reported as beyond.

A finite halo cannot guarantee a time longer than the time it was sized for: a station 20 km
away is in no partition's halo, yet in a whole-region run it may reach a remote building in
25 minutes. So a region run reports every figure exactly up to its horizon and "beyond" past
it — in the whole-region run and in the partitioned run alike, so the two are equal by
construction and the rule is honest about what it knows:

- ``t_fire_s``, ``t_micro_s`` longer than the horizon (the longest target, seconds) are NaN,
  their ``*_station_id`` empty and ``shortfall_*_s`` NaN ("not reached within the horizon",
  which the risk index scores like an unreachable building: the largest shortfall);
  ``covered_*`` and ``n_*`` are unaffected (they count within targets, inside the horizon);
- ``d_hydrant_m``, ``d_hydrant_net_m`` and ``d_water_source_m`` longer than the water horizon
  (metres, where ``water_deficiency`` reaches 1) are NaN and their ``*_id_nearest`` empty;
  ``water_covered``, ``water_deficient`` and ``water_deficiency`` are unaffected;
- ``access_issue`` and ``water_issue`` say "not reached within …" where a time or distance is
  beyond; reasons that depend on the building alone (too far from a road, no geometry) stay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from firegrid.spatial.access.travel_times import COLS

# Time column -> (station-id column, shortfall column, issue prefix).
TIME_COLUMNS = {c["t"]: (c["sid"], c["short"], c["label"]) for c in COLS.values()}
# Distance column -> its id column (None: no id).
WATER_COLUMNS = {
    "d_hydrant_net_m": "hydrant_id_nearest",
    "d_water_source_m": "water_source_id_nearest",
    "d_hydrant_m": None,
}
# Reasons about the building itself, exact in any partition: kept as they are.
_OWN_REASONS = ("too far from road", "no geometry")


def beyond_horizon(buildings: pd.DataFrame, *, horizon_s: float, water_m: float) -> pd.DataFrame:
    """The buildings with every figure beyond the horizon reported as beyond (a copy).

    Parameters
    ----------
    buildings : DataFrame or GeoDataFrame
        Buildings with the access and water columns (those present are treated).
    horizon_s : float
        Longest time reported (seconds, turnout included).
    water_m : float
        Longest distance to fire water reported (metres).

    Returns
    -------
    The same type, same index and columns.
    """
    out = buildings.copy()
    beyond = {}
    for col, (sid, short, _) in TIME_COLUMNS.items():
        if col in out:
            t = pd.to_numeric(out[col], errors="coerce")
            far = (t > horizon_s).to_numpy()
            beyond[col] = t.isna().to_numpy() | far
            out[col] = t.mask(far)
            for other in (sid, short):
                if other in out:
                    out[other] = out[other].mask(beyond[col])
    if "access_issue" in out and beyond:
        out["access_issue"] = _access_issue(out["access_issue"], beyond, horizon_s)
    for col, ident in WATER_COLUMNS.items():
        if col in out:
            d = pd.to_numeric(out[col], errors="coerce")
            far = (d > water_m).to_numpy()
            out[col] = d.mask(far)
            if ident and ident in out:
                out[ident] = out[ident].mask(d.isna().to_numpy() | far)
    if "water_issue" in out and "water_covered" in out:
        out["water_issue"] = _water_issue(out, water_m)
    return out


def _access_issue(issue: pd.Series, beyond: dict, horizon_s: float) -> pd.Series:
    text = issue.astype("string").fillna("")
    own = text.str.contains("|".join(_OWN_REASONS), regex=True).to_numpy()
    late = f"not reached within {horizon_s:g} s"
    none = np.zeros(len(text), dtype=bool)
    fire, micro = (beyond.get(c, none) for c in TIME_COLUMNS)
    labels = [label for _, _, label in TIME_COLUMNS.values()]
    new = np.select(
        [fire & micro, fire, micro], [late, f"{labels[0]}: {late}", f"{labels[1]}: {late}"], ""
    )
    return pd.Series(np.where(own, text.to_numpy(dtype=object), new), index=issue.index,
                     dtype="str")  # fmt: skip


def _water_issue(b: pd.DataFrame, water_m: float) -> pd.Series:
    text = b["water_issue"].astype("string").fillna("")
    dist = [pd.to_numeric(b[c], errors="coerce") for c in ("d_hydrant_net_m", "d_water_source_m")
            if c in b]  # fmt: skip
    none = np.logical_and.reduce([d.isna().to_numpy() for d in dist]) if dist else False
    covered = b["water_covered"].fillna(False).astype(bool).to_numpy()
    replace = none & ~covered & ~text.str.contains("no geometry").to_numpy()
    far = f"no working hydrant or usable water source within {water_m:g} m along streets"
    return pd.Series(np.where(replace, far, text.to_numpy(dtype=object)), index=b.index,
                     dtype="string")  # fmt: skip
