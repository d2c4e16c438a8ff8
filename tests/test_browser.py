"""The exported map in a real headless Chromium with the network cut off.

Checks: no JavaScript errors, every layer in the layer control and on the map, nothing but
basemap tiles requested from the network, popups open; an XSS payload in every text column of
the demo never runs; hostile text (template syntax, ``</script>``, ``${…}``) in every text
column and the title shows literally in tooltips and popups and runs nothing; a personal field
of the input never reaches the HTML. Screenshots are saved under pytest's tmp path.

Skips (with the reason) only where Chromium, chromedriver or selenium is not installed; with
the environment variable ``CI`` set, their absence fails the tests instead (CI installs the
Debian packages ``chromium`` and ``chromium-driver``). A browser that is installed but fails
to start is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import geopandas as gpd
import pytest

from tests._demo import DEMO, demo_cli_run, requires_demo, xss_demo_map
from tests._mapdata import HOSTILE_HEADER, HOSTILE_SUFFIX, hostile_demo_map

# CI=true: a missing browser is a failure there, not a skip.
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise
    pytest.skip("selenium not installed (pip install -e '.[test]')", allow_module_level=True)

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [pytest.mark.browser, pytest.mark.slow, requires_demo()]

# Installed before any page script runs: records uncaught errors, rejected promises,
# console.error calls and alert/confirm/prompt calls (which must never come).
CAPTURE = """
window.__errors = [];
window.__alerts = [];
window.alert = window.confirm = window.prompt = m => { window.__alerts.push(String(m)); };
window.addEventListener('error', e => window.__errors.push(
    'error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || e.type)), true);
window.addEventListener('unhandledrejection', e => window.__errors.push('rejection: ' + e.reason));
const __ce = console.error;
console.error = function() { window.__errors.push('console: ' + Array.from(arguments).join(' ')); __ce.apply(console, arguments); };
"""

# The Leaflet map (a global ``var``) and the layer control (a top-level ``let``, reachable by
# name: ``CTRL`` is replaced by that name, read from the page).
STATE = """
const map = Object.values(window).find(v => v instanceof L.Map);
const ctrl = CTRL;
const overlays = ctrl._layers.filter(l => l.overlay);
return {
  overlays: overlays.map(l => ({name: l.name, on: map.hasLayer(l.layer)})),
  bases: ctrl._layers.filter(l => !l.overlay).map(l => l.name),
  labels: document.querySelectorAll('.leaflet-control-layers-overlays label').length,
  // vector features on the map (drawn on a canvas, so counted as layers, not SVG paths)
  paths: Object.values(map._layers).filter(l => l instanceof L.Path).length,
  icons: document.querySelectorAll('.fg-icon').length,
  xss: typeof window.__xss,
  alerts: window.__alerts,
  errors: window.__errors,
};
"""

# Opens the popup or tooltip of up to ``n`` features of every GeoJSON layer on the map, the
# way a click or a hover would (events propagate to the layer's bound popup).
OPEN_POPUPS = """
const n = arguments[0];
const map = Object.values(window).find(v => v instanceof L.Map);
const centre = map.getCenter(), zoom = map.getZoom();  // popups pan the map: restore after
let opened = 0, texts = [], contents = [];
map.eachLayer(layer => {
  if (!(layer instanceof L.GeoJSON)) return;
  let k = 0;
  layer.eachLayer(f => {
    if (k++ >= n) return;
    const ll = f.getBounds ? f.getBounds().getCenter() : f.getLatLng();
    f.fire('mouseover', {latlng: ll}, true);
    f.fire('click', {latlng: ll}, true);
    // the newest: a closed popup stays in the page for its 200 ms fade, and the permanent
    // grid-name labels are tooltips too
    const p = Array.from(document.querySelectorAll('.leaflet-popup-content')).pop();
    const t = Array.from(document.querySelectorAll('.leaflet-tooltip:not(.fg-label)')).pop();
    if (p) { opened++; texts.push(p.innerText); contents.push(p.textContent); }
    if (t) { texts.push(t.innerText); contents.push(t.textContent); }
    f.fire('mouseout', {latlng: ll}, true);
    map.closePopup();
  });
});
map.setView(centre, zoom, {animate: false});
return {opened: opened, texts: texts, contents: contents, xss: typeof window.__xss,
        alerts: window.__alerts, errors: window.__errors};
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not p]
    if missing:
        reason = (
            f"headless Chromium not installed (no {' or '.join(missing)}; "
            "apt-get install chromium chromium-driver)"
        )
        if IN_CI:
            pytest.fail(f"CI is set: {reason}")
        pytest.skip(reason)
    profile = tmp_path_factory.mktemp("chromium-profile")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # Cut the network: every host name fails to resolve and any proxy use fails.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An installed browser that does not start is a broken environment: an error, not a skip.
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(120)
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CAPTURE})
    yield drv
    drv.quit()


def _state_script(html: str) -> str:
    name = re.search(r"let (layer_control_[0-9a-f]+) = L\.control\.layers", html).group(1)
    return STATE.replace("CTRL", name)


def _open(driver, path: Path) -> dict:
    driver.get_log("performance")  # drop entries of earlier pages
    driver.get_log("browser")
    script = _state_script(path.read_text(encoding="utf-8"))
    driver.get(path.resolve().as_uri())
    deadline = time.monotonic() + 60
    state = {}
    while time.monotonic() < deadline:
        ready = driver.execute_script(
            "return document.readyState === 'complete' && typeof L !== 'undefined' && "
            "Object.values(window).some(v => v instanceof L.Map)"
        )
        if ready:
            state = driver.execute_script(script)
            if state["paths"] > 0:
                break
        time.sleep(0.25)
    time.sleep(0.5)  # let the first render settle
    if state:
        state = driver.execute_script(script)
        state["script"] = script
    return state


def _js_errors(driver, state: dict) -> list[str]:
    """Errors from page scripts (network failures of basemap tiles are expected offline)."""
    logged = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    captured = [
        e for e in state.get("errors", []) if "tile" not in e and not e.startswith("error: http")
    ]
    return logged + captured


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _expected_overlays(html: str) -> list[str]:
    """Overlay names as written by folium's LayerControl into the page."""
    block = re.search(r"overlays :\s*\{(.*?)\},\s*\};", html, re.S).group(1)
    return [json.loads(m) for m in re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:', block, re.M)]


def _toggle_all_overlays_on(driver) -> None:
    driver.execute_script(
        "document.querySelectorAll('.leaflet-control-layers-overlays input[type=checkbox]')"
        ".forEach(i => { if (!i.checked) i.click(); });"
    )
    time.sleep(0.5)


def test_demo_map_works_offline_with_every_layer(driver, tmp_path):
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    path = folder / "map.html"
    html = path.read_text(encoding="utf-8")
    state = _open(driver, path)
    assert state, "the map never finished loading"
    assert _js_errors(driver, state) == []
    # every layer is in the layer control …
    expected = _expected_overlays(html)
    names = [o["name"] for o in state["overlays"]]
    assert names == expected and state["labels"] == len(expected)
    for layer in (
        "建筑风险等级",
        "网格风险指数（第3级网格）",
        "网格边界",
        "室外消火栓",
        "消防救援站",
        "微型消防站",
        "消防水源",
        "消防缺水区域",
        "隐患（未整改/已逾期）",
        "道路",
    ):
        assert layer in names, layer
    # the demo runs every step, proposes sites and hydrants and draws reach bands and areas:
    # each has its layer (asserted whatever the summary says, so a lost layer fails)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == ["load", "network", "access", "water", "risk", "siting"]
    assert summary["figures"]["siting"]["new_sites"] > 0
    assert summary["figures"]["water"]["new_hydrants_needed"] > 0
    assert "建议新增微型消防站" in names and "建议新增消火栓" in names
    assert any("可达范围" in n for n in names) and any("责任区" in n for n in names)
    # … a calm start: grids by risk, their names, buildings, stations and roads are on, the
    # rest off; the layers switched on are on the map and drawn (on a canvas)
    on = {o["name"] for o in state["overlays"] if o["on"]}
    assert on == {
        "网格风险指数（第3级网格）",
        "网格名称",
        "道路",
        "建筑风险等级",
        "消防救援站",
        "微型消防站",
    }
    assert state["paths"] > 2000  # building outlines, grid cells, roads …
    assert state["icons"] >= 7  # the seven stations' inline-SVG icons
    # offline: nothing but basemap tiles was requested from the network
    remote = [u for u in _requested_urls(driver) if u.startswith(("http:", "https:"))]
    assert all("tile.openstreetmap.org" in u for u in remote), remote[:5]
    driver.save_screenshot(str(tmp_path / "demo-map.png"))
    # every overlay can be switched on without an error; popups open
    _toggle_all_overlays_on(driver)
    state = driver.execute_script(state["script"])
    assert all(o["on"] for o in state["overlays"])
    popups = driver.execute_script(OPEN_POPUPS, 3)
    assert popups["opened"] >= 3
    assert any("风险指数" in t for t in popups["texts"])
    assert _js_errors(driver, popups) == []
    driver.save_screenshot(str(tmp_path / "demo-map-all-layers.png"))


def test_personal_field_of_the_input_is_absent_from_the_html():
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    html = (folder / "map.html").read_text(encoding="utf-8")
    buildings = gpd.read_file(DEMO / "buildings.gpkg", layer="buildings")
    assert "contact_phone" in buildings  # the demo carries a personal field …
    phones = buildings["contact_phone"].dropna().astype(str)
    assert len(phones) > 100
    assert "contact_phone" not in html  # … which never reaches the map
    assert not any(p in html for p in phones)


def test_xss_payload_in_every_text_column_does_not_execute(driver, tmp_path):
    path, run = xss_demo_map()
    html = path.read_text(encoding="utf-8")
    # the payload reached the map as text (allow_fields = ["all"]) but only escaped …
    assert "window.__xss" in html
    assert "<script>window.__xss" not in html and 'onerror="window.__xss' not in html
    # … and personal columns stayed out even under "all"
    assert "contact_phone" not in html
    state = _open(driver, path)
    assert state, "the map never finished loading"
    assert state["xss"] == "undefined"
    assert _js_errors(driver, state) == []
    _toggle_all_overlays_on(driver)
    popups = driver.execute_script(OPEN_POPUPS, 5)
    assert popups["opened"] >= 5
    assert popups["xss"] == "undefined"
    # the payload is displayed as text where it was put (ids, names, notes)
    assert any('<img src=x onerror="window.__xss=1">' in t for t in popups["texts"])
    assert _js_errors(driver, popups) == []
    assert driver.execute_script("return typeof window.__xss") == "undefined"
    driver.save_screenshot(str(tmp_path / "xss-map.png"))


def _words(text: str) -> str:
    """``text`` with white space collapsed, as a page lays it out (CR read as LF, runs of
    spaces as one)."""
    return " ".join(text.split())


def test_hostile_text_shows_literally_and_runs_nothing(driver, tmp_path):
    path, _ = hostile_demo_map()
    state = _open(driver, path)
    assert state, "the map never finished loading"
    assert _js_errors(driver, state) == []
    assert state["alerts"] == [] and state["xss"] == "undefined"
    # the district name is the page title and the title box, literally
    title = _words("Demo " + HOSTILE_SUFFIX)
    assert _words(driver.title) == title
    box = driver.execute_script("return document.querySelector('.fg-title').textContent")
    assert _words(box).startswith(title)
    _toggle_all_overlays_on(driver)
    popups = driver.execute_script(OPEN_POPUPS, 3)
    assert popups["opened"] >= 3
    # tooltips and popups of every layer show the text whole (ids, names, notes, streets) …
    shown = [_words(c) for c in popups["contents"]]
    suffix = _words(HOSTILE_SUFFIX)
    assert sum(suffix in c for c in shown) >= 10
    assert all(suffix in c for c in shown if "lipsum" in c)
    # … and the extra column's hostile header as its label
    assert any(_words(HOSTILE_HEADER) in c for c in shown)
    assert popups["alerts"] == [] and popups["xss"] == "undefined"
    assert _js_errors(driver, popups) == []
    driver.save_screenshot(str(tmp_path / "hostile-map.png"))


# A point of the map where a click reaches a feature of the layers of class ``field`` and
# nothing else: inside the feature (the canvas renderer's own hit test), not inside any
# building when the target is a grid cell, and the canvas itself is what lies under the
# point (no control, legend, title, label or icon over it). Returns viewport coordinates.
CLICK_POINT = """
const field = arguments[0], avoid = arguments[1];
const map = Object.values(window).find(v => v instanceof L.Map);
const layers = [];
map.eachLayer(l => { if (l instanceof L.GeoJSON) layers.push(l); });
// FireGrid names each GeoJSON layer by its class: fg-buildings, fg-grids …
const targets = layers.filter(l => l.options.className === field);
const blockers = avoid ? layers.filter(l => l.options.className === avoid) : [];
const rect = map.getContainer().getBoundingClientRect();
for (const f of targets.flatMap(t => t.getLayers())) {
  if (!f._containsPoint) continue;
  const b = f._pxBounds;
  for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++) {
    const p = L.point(b.min.x + (b.max.x - b.min.x) * i / 8, b.min.y + (b.max.y - b.min.y) * j / 8);
    if (!f._containsPoint(p)) continue;
    if (blockers.some(bl => bl.getLayers().some(o => o._containsPoint && o._pxBounds &&
        o._pxBounds.contains(p) && o._containsPoint(p)))) continue;
    const c = map.layerPointToContainerPoint(p);
    const x = rect.left + c.x, y = rect.top + c.y;
    if (x < 5 || y < 5 || x > window.innerWidth - 5 || y > window.innerHeight - 5) continue;
    const under = document.elementFromPoint(x, y);
    if (under && under.tagName === 'CANVAS') return {x: x, y: y};
  }
}
return null;
"""

CONTROLS = """
const legend = document.querySelector('.fg-legend');
const ctrl = document.querySelector('.leaflet-control-layers');
return {legend_open: legend.open,
        layers_open: ctrl.classList.contains('leaflet-control-layers-expanded'),
        legend_width: legend.getBoundingClientRect().width,
        labels: Array.from(document.querySelectorAll('.leaflet-tooltip.fg-label'))
          .filter(t => t.offsetWidth > 0).map(t => t.textContent)};
"""

POPUP = """
const p = document.querySelector('.leaflet-popup-content');
if (!p) return null;
const r = p.closest('.leaflet-popup').getBoundingClientRect();
return {text: p.innerText, rows: p.querySelectorAll('tr').length, left: r.left, right: r.right,
        width: r.width};
"""


def _viewport(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def _click(driver, point: dict, *, touch: bool) -> None:
    """A tap (phone) or a mouse click (desktop) at viewport ``point``, as the browser's input."""
    if touch:
        for kind, points in (("touchStart", [point]), ("touchEnd", [])):
            driver.execute_cdp_cmd(
                "Input.dispatchTouchEvent", {"type": kind, "touchPoints": points}
            )
    else:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            driver.execute_cdp_cmd(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1},
            )
    time.sleep(0.4)


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1400, 900)])
def test_demo_map_reads_on_a_phone_and_a_desktop(driver, tmp_path, width, height):
    """The leaders' map at a phone's and a desktop's size: the controls fold on the phone,
    grid names are written on the map, a click on a grid cell and on a building opens its
    figures (minutes and percentages), the popup fits the screen."""
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    _viewport(driver, width, height)
    try:
        state = _open(driver, folder / "map.html")
        assert state, "the map never finished loading"
        assert _js_errors(driver, state) == []
        controls = driver.execute_script(CONTROLS)
        phone = width < 600
        assert controls["layers_open"] is not phone and controls["legend_open"] is not phone
        # the communities are named on the map (8 level-2 cells of the demo)
        assert len(controls["labels"]) == summary["figures"]["district"]["grids_by_level"]["2"]
        assert all(label.endswith("居委") for label in controls["labels"])
        driver.save_screenshot(str(tmp_path / f"map-{width}.png"))

        # a building: short popup, times in minutes, grade in the registry's words
        point = driver.execute_script(CLICK_POINT, "fg-buildings", None)
        assert point, "no building to click"
        _click(driver, point, touch=phone)
        popup = driver.execute_script(POPUP)
        assert popup, "clicking a building opened nothing"
        assert 5 <= popup["rows"] <= 9
        assert re.search(r"微站到场时间 \(分钟\)\s+\d+\.\d\b", popup["text"]), popup["text"]
        assert re.search(r"风险等级\s+(重大|较大|一般|低)\b", popup["text"]), popup["text"]
        assert re.search(r"主要风险因素\s+\S+", popup["text"]) and "(s)" not in popup["text"]
        assert popup["left"] >= 0 and popup["right"] <= width  # fits the screen
        driver.save_screenshot(str(tmp_path / f"map-{width}-building.png"))
        driver.execute_script("Object.values(window).find(v => v instanceof L.Map).closePopup()")

        # a grid cell (where no building is): its key figures, shares in %
        point = driver.execute_script(CLICK_POINT, "fg-grids", "fg-buildings")
        assert point, "no grid cell to click"
        _click(driver, point, touch=phone)
        popup = driver.execute_script(POPUP)
        assert popup, "clicking a grid cell opened nothing"
        text = popup["text"]
        assert re.search(r"3分钟覆盖率\s+\d+\.\d %", text), text
        assert re.search(r"缺水建筑占比\s+\d+\.\d %", text), text
        assert re.search(r"各等级建筑数\s+重大 \d+ · 较大 \d+ · 一般 \d+ · 低 \d+", text), text
        assert "建筑数" in text and "未整改隐患" in text
        assert popup["left"] >= 0 and popup["right"] <= width
        driver.save_screenshot(str(tmp_path / f"map-{width}-grid.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
