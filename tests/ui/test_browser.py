"""The dashboard in a real browser: headless Debian chromium driven by Playwright (never a downloaded browser),
against a real service (gunicorn API processes and a worker, tests/contract/livestack.py).

Screenshots of every page go to the test's tmp folder and, when TRAINYARD_SCREENSHOTS names a folder, there too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (Debian's chromium package; .ci/run installs it)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")

from trainyard.store.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402
from trainyard.store.tokens import create_token  # noqa: E402

from tests.support.livestack import live_stack  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"
XOR_FIT = {"name": "xor-fit", "backend": "numpy", "dataset": {"builtin": "xor"},
           "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                                {"type": "dense", "units": 1, "activation": "sigmoid"}]},
           "training": {"epochs": 300, "seed": 3, "batch_size": 4, "optimizer": {"name": "adam", "learning_rate": 0.05}}}
TIMEOUT_MS = 60_000


def token_for(settings: Settings, user: str, scopes=("read", "write")) -> str:
    engine = make_engine(settings)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            return create_token(session=s, user_name=user, scopes=scopes)[0]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, fast_timings):
    """The API (2 processes), a worker and a reconciler (it also steps sweeps whose trial-end step failed)."""
    import subprocess

    from tests.support import ROOT
    from tests.support.processes import settings_env, stop_process

    with live_stack(Settings(home=tmp_path_factory.mktemp("ui") / "home", **fast_timings), api_processes=2) as s:
        s.bob = token_for(s.settings, "bob")
        with open(s.settings.home / "reconciler.log", "ab") as log:
            reconciler = subprocess.Popen([sys.executable, "-m", "trainyard.worker.reconciler"], env=settings_env(s.settings),
                                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield s
        finally:
            stop_process(reconciler)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        # WebGL (plotly's parallel coordinates) in software: this machine has no GPU
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path):
    """shots(page, name): a full-page PNG under tmp_path/screenshots and $TRAINYARD_SCREENSHOTS."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    extra = Path(os.environ["TRAINYARD_SCREENSHOTS"]) if os.environ.get("TRAINYARD_SCREENSHOTS") else None

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra is not None:
            extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, extra / path.name)
        return path
    return take


class Signed:
    """A browser context signed in as one user, with the dialogs and page errors it saw."""

    def __init__(self, browser, stack, token: str):
        self.stack, self.context = stack, browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.dialogs, self.errors, self.accept = [], [], False  # confirm(): dismissed unless accept is set
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.accept() if self.accept else d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(stack.url + "/")
        assert "/ui/signin" in self.page.url
        self.page.fill("#token", token)
        self.page.click("#token-form button[type=submit]")
        self.page.wait_for_url("**/ui/jobs")

    def api(self, method: str, path: str, body=None, token: str | None = None) -> dict:
        """A call with the bearer token (the test's side channel, not the page's)."""
        r = self.context.request.fetch(self.stack.url + "/api/v1" + path, method=method,
                                       headers={"Authorization": f"Bearer {token or self.stack.token}"},
                                       data=json.dumps(body) if body is not None else None)
        assert r.ok, r.text()
        return r.json() if r.status != 204 else {}

    def close(self):
        self.context.close()


@pytest.fixture
def alice(browser, stack):
    s = Signed(browser, stack, stack.token)
    yield s
    assert s.errors == [], s.errors  # no script failed on any page
    s.close()


def points(page, chart: str) -> int:
    return page.evaluate(f"() => {{ const c = document.getElementById('{chart}'); "
                         f"return c && c.data && c.data[0] ? c.data[0].x.length : 0; }}")


def test_sign_in_lands_on_the_jobs_page_with_a_session_cookie_only(alice, stack, shots):
    cookies = alice.context.cookies()
    assert [c["name"] for c in cookies] == ["trainyard_session"]
    [c] = cookies
    assert c["httpOnly"] and c["sameSite"] == "Strict" and stack.token not in c["value"]
    assert alice.page.evaluate("document.cookie") == ""  # not readable by scripts
    job = alice.api("POST", "/jobs", {**XOR_FIT, "name": "listed"})
    alice.page.wait_for_selector(f"tr[data-id='{job['id']}']")  # the list refreshes itself
    shots(alice.page, "jobs")


def test_submit_from_the_page_then_the_curve_grows_without_reload_and_cancel(alice, shots):
    page = alice.page
    page.click("#submit-box summary")
    spec = {**XOR_FIT, "name": "long-xor", "training": {**XOR_FIT["training"], "epochs": 200_000}}
    page.fill("#spec", json.dumps(spec))
    page.click("#submit-form button[type=submit]")
    page.wait_for_url("**/ui/jobs/*")
    page.evaluate("window.__same_document = true")
    page.wait_for_function("() => document.getElementById('status').textContent === 'running'")
    page.wait_for_function("() => { const c = document.getElementById('loss-chart'); return c.data && c.data[0].x.length > 0; }")
    first = points(page, "loss-chart")
    page.wait_for_function(f"() => document.getElementById('loss-chart').data[0].x.length > {first + 5}")
    assert page.evaluate("window.__same_document") is True  # grew by events, not by a reload
    shots(page, "job-running")
    page.click("#cancel")
    page.wait_for_function("() => document.getElementById('status').textContent === 'cancelled'")
    job_id = page.url.rsplit("/", 1)[1]
    assert alice.api("GET", f"/jobs/{job_id}")["status"] == "cancelled"
    assert page.evaluate("window.__same_document") is True
    shots(page, "job-cancelled")


def test_the_xor_decision_boundary_has_four_correctly_coloured_corners(alice, shots):
    job = alice.api("POST", "/jobs", XOR_FIT)
    page = alice.page
    page.goto(f"{alice.stack.url}/ui/jobs/{job['id']}")
    page.wait_for_function("() => document.getElementById('status').textContent === 'succeeded'")
    page.wait_for_function("() => document.getElementById('boundary-chart').dataset.source === 'model'")
    corners = page.evaluate("""() => {
        const d = document.getElementById('boundary-chart').data[0];
        const near = (axis, v) => axis.reduce((best, a, i) => Math.abs(a - v) < Math.abs(axis[best] - v) ? i : best, 0);
        const out = {};
        for (const [x, y] of [[0, 0], [0, 1], [1, 0], [1, 1]]) out[`${x}${y}`] = d.z[near(d.y, y)][near(d.x, x)];
        return out; }""")
    assert corners["00"] < 0.5 and corners["11"] < 0.5 and corners["01"] > 0.5 and corners["10"] > 0.5, corners
    # The colours as drawn: plotly's heatmap image, sampled at the four corners' pixels (reversed RdBu: P(1) = 1 is
    # blue, 0 is red).
    pixels = page.evaluate("""() => new Promise(done => {
        const gd = document.getElementById('boundary-chart'), img = gd.querySelector('.hm image');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = img.getBBox();
        const pic = new Image();
        pic.onload = () => {
            const c = document.createElement('canvas'); c.width = pic.width; c.height = pic.height;
            const ctx = c.getContext('2d'); ctx.drawImage(pic, 0, 0);
            const out = {};
            for (const [x, y] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
                const px = (xa.l2p(x) - box.x) * pic.width / box.width, py = (ya.l2p(y) - box.y) * pic.height / box.height;
                out[`${x}${y}`] = Array.from(ctx.getImageData(Math.floor(px), Math.floor(py), 1, 1).data.slice(0, 3));
            }
            done(out);
        };
        pic.src = img.getAttribute('href') || img.getAttribute('xlink:href');
    })""")
    for corner, (r, g, b) in pixels.items():
        if corner in ("01", "10"):
            assert b > r + 60, (corner, pixels)  # blue: class 1
        else:
            assert r > b + 60, (corner, pixels)  # red: class 0
    shots(page, "job-boundary")


def test_compare_overlays_two_jobs(alice, shots):
    a = alice.api("POST", "/jobs", {**XOR_FIT, "name": "cmp-a"})
    b = alice.api("POST", "/jobs", {**XOR_FIT, "name": "cmp-b", "training": {**XOR_FIT["training"], "seed": 4}})
    page = alice.page
    for j in (a, b):
        page.wait_for_function("async id => (await (await fetch('/api/v1/jobs/' + id)).json()).status === 'succeeded'",
                               arg=j["id"])
    page.goto(f"{alice.stack.url}/ui/jobs")
    page.check(f"tr[data-id='{a['id']}'] input[type=checkbox]")
    page.check(f"tr[data-id='{b['id']}'] input[type=checkbox]")
    page.click("#compare-selected")
    page.wait_for_url("**/ui/compare?ids=*")
    page.wait_for_selector("body[data-ready=yes]")
    names = page.evaluate("document.getElementById('compare-loss').data.map(t => t.name)")
    assert "cmp-a: loss" in names and "cmp-b: loss" in names
    lengths = page.evaluate("document.getElementById('compare-loss').data.map(t => t.x.length)")
    assert set(lengths) == {300}
    shots(page, "compare")


def test_a_hostile_job_name_is_text_and_opens_no_dialog(alice, shots):
    job = alice.api("POST", "/jobs", {**XOR_FIT, "name": XSS})
    page = alice.page
    page.goto(f"{alice.stack.url}/ui/jobs")
    cell = page.wait_for_selector(f"tr[data-id='{job['id']}'] a.job-name")
    assert cell.inner_text() == XSS
    page.goto(f"{alice.stack.url}/ui/jobs/{job['id']}")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.inner_text("#title") == XSS and XSS in page.title()
    assert page.query_selector("img[src=x]") is None
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert alice.dialogs == []
    shots(page, "job-xss")


def test_another_users_job_is_not_found(alice, stack, shots):
    theirs = alice.api("POST", "/jobs", {**XOR_FIT, "name": "bobs"}, token=stack.bob)
    response = alice.page.goto(f"{stack.url}/ui/jobs/{theirs['id']}")
    assert response.status == 404
    assert alice.page.inner_text("#title") == "Not found" and "bobs" not in alice.page.content()
    shots(alice.page, "not-found")


def test_a_state_changing_request_without_the_csrf_token_is_refused(alice, stack):
    page = alice.page
    job = alice.api("POST", "/jobs", {**XOR_FIT, "name": "csrf-victim", "training": {**XOR_FIT["training"], "epochs": 200_000}})
    result = page.evaluate("""async id => {
        const bare = await fetch('/api/v1/jobs/' + id + '/cancel', {method: 'POST'});
        const form = new FormData(); form.set('csrf', 'guess');
        const signout = await fetch('/ui/signout', {method: 'POST', body: form, redirect: 'manual'});
        return [bare.status, (await bare.json()).type, signout.status];
    }""", job["id"])
    assert result == [403, "urn:trainyard:problem:csrf", 403]
    assert alice.api("GET", f"/jobs/{job['id']}")["status"] in ("queued", "running")  # not cancelled
    alice.api("POST", f"/jobs/{job['id']}/cancel")
    page.goto(f"{stack.url}/ui/jobs")  # still signed in
    assert page.url.endswith("/ui/jobs")


def test_every_page_renders_without_script_errors(alice, stack, shots):
    for path, name in (("/ui/workers", "workers"), ("/ui/datasets", "datasets"), ("/ui/sweeps", "sweeps")):
        alice.page.goto(stack.url + path)
        alice.page.wait_for_load_state("networkidle")
        shots(alice.page, name)
    alice.page.goto(stack.url + "/ui/workers")
    alice.page.wait_for_selector("#workers tbody tr td")
    assert "cpu" in alice.page.inner_text("#queues")


def test_a_sweep_page_sorts_trials_by_objective_and_draws_best_so_far_and_parallel_coordinates(alice, shots):
    base = {**XOR_FIT, "training": {**XOR_FIT["training"], "epochs": 30}}
    sweep = alice.api("POST", "/sweeps", {"name": "units", "base": base, "sampler": "grid",
                                          "space": {"model.layers[0].units": {"choice": [1, 2, 8]}},
                                          "objective": {"metric": "loss"}})
    page = alice.page
    page.goto(f"{alice.stack.url}/ui/sweeps")
    page.wait_for_selector("#sweeps a:text('units')")
    page.click("#sweeps a:text('units')")
    page.wait_for_url(f"**/ui/sweeps/{sweep['id']}")
    page.wait_for_function("() => document.getElementById('status').textContent === 'succeeded'", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 3")
    page.click("th[data-sort=objective]")
    page.wait_for_function("() => document.querySelector('th[data-sort=objective]').textContent.endsWith('▾')")
    values = page.eval_on_selector_all("#trials tbody td.value", "cells => cells.map(c => parseFloat(c.textContent))")
    assert values == sorted(values) and len(values) == 3  # loss: smallest first
    best = page.evaluate("document.getElementById('objective-chart').data[1].y")
    assert best == sorted(best, reverse=True) and abs(best[-1] - values[0]) < 1e-3  # best so far never worsens
    dims = page.evaluate("document.getElementById('parcoords-chart').data[0].dimensions.map(d => d.label)")
    assert dims == ["model.layers[0].units", "loss"]
    assert "WebGL is not supported" not in page.inner_text("#parcoords-chart")
    assert page.evaluate("document.querySelectorAll('#parcoords-chart canvas').length") > 0  # drawn
    link = page.get_attribute("#trials tbody tr:first-child a", "href")
    assert link.startswith("/ui/jobs/")
    shots(page, "sweep")


def test_datasets_upload_shows_the_apis_field_errors_then_lists_and_deletes(alice, shots, tmp_path):
    page = alice.page
    page.goto(f"{alice.stack.url}/ui/datasets")
    csv = tmp_path / "two.csv"
    csv.write_text("a,b,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    page.set_input_files("#file", str(csv))
    page.fill("#ds-name", "two-features")
    page.fill("#ds-target", "nope")
    page.click("#upload-form button[type=submit]")
    error = page.wait_for_selector("#upload-form .field-error")
    assert error.inner_text().startswith("file: target column 'nope' is not in the CSV")  # the API's loc and msg
    shots(page, "datasets-error")
    page.fill("#ds-target", "label")
    page.click("#upload-form button[type=submit]")
    row = page.wait_for_selector("#datasets tbody tr[data-id]")
    assert "two-features" in row.inner_text()
    shots(page, "datasets")
    page.click("#datasets tbody tr[data-id] button.delete")  # confirm() dismissed: nothing happens
    assert page.query_selector("#datasets tbody tr[data-id]") is not None
    alice.accept = True
    page.click("#datasets tbody tr[data-id] button.delete")
    page.wait_for_selector("#datasets tbody tr[data-id]", state="detached")
    assert alice.api("GET", "/datasets")["items"] == []


def test_the_link_trainyard_up_prints_signs_a_browser_in_once(browser, stack, shots):
    from trainyard.api.ui.sessions import create_code

    engine = make_engine(stack.settings)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            code = create_code(s, user_name="alice")
    finally:
        engine.dispose()
    link = f"{stack.url}/ui/signin?code={code}"
    first, second = browser.new_context(), browser.new_context()
    try:
        page = first.new_page()
        page.goto(link)
        page.click("#code-form button[type=submit]")
        page.wait_for_url("**/ui/jobs")
        assert code not in page.url and [c["name"] for c in first.cookies()] == ["trainyard_session"]
        other = second.new_page()
        other.goto(link)
        other.click("#code-form button[type=submit]")
        assert "used already or has expired" in other.inner_text("#signin-error")
        shots(other, "signin-used-link")
    finally:
        first.close()
        second.close()


def test_a_read_only_token_signs_in_and_sees_no_actions(browser, stack, shots):
    reader = Signed(browser, stack, token_for(stack.settings, "carol", scopes=("read",)))
    try:
        page = reader.page
        assert page.inner_text(".badge") == "read-only" and page.query_selector("#submit-form") is None
        job = reader.api("POST", "/jobs", {**XOR_FIT, "name": "carols"},
                         token=token_for(stack.settings, "carol"))
        page.goto(f"{stack.url}/ui/jobs/{job['id']}")
        page.wait_for_selector("body[data-ready=yes]")
        assert page.query_selector("#cancel") is None and page.query_selector("#delete") is None
        shots(page, "job-read-only")
        assert reader.errors == []
    finally:
        reader.close()
