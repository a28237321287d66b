"""The report as a person sees it: the quick demo's report.html opened in headless Chromium.

Needs Debian's chromium + chromium-driver (`make test` installs them when it can) and selenium (the
dev extra); skipped, saying which is missing, only where they cannot be had."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reweightlab.recipes.demo import DEMO_METHODS
from reweightlab.report import figures, write_report
from reweightlab.report.claims_html import VERDICT_COLORS, verdict_class
from reweightlab.report.html import SECTIONS

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL = "install it with `apt-get install chromium chromium-driver` (make test does so when it can)"


def _browser(profile: Path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists() and shutil.which(binary.name) is None:
            pytest.skip(f"{binary} is missing: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, read below
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(str(driver_path)), options=options)


def _rgb(hex_color: str) -> str:
    """'#2e7d32' as the browser's computed style writes it: 'rgb(46, 125, 50)'."""
    return "rgb({}, {}, {})".format(*(int(hex_color[i:i + 2], 16) for i in (1, 3, 5)))


def _check_claims(driver, images) -> None:
    """Where the page has a claims section (the demo wrote claims.json): it comes first, in the nav too, and
    every claim panel carries one verdict badge in its verdict's colour; its figures have loaded (above)."""
    panels = driver.execute_script(
        "const s = document.getElementById('claims'); if (!s) return null;"
        "return Array.from(s.querySelectorAll('article.claim')).map(a => [a.dataset.claim, a.dataset.verdict, "
        "Array.from(a.querySelectorAll(':scope > header .badge')).map(b => [b.className, b.innerText.trim(), "
        "getComputedStyle(b).backgroundColor, b.getBoundingClientRect().width]), a.querySelectorAll('img').length]);")
    if panels is None:
        return
    first = driver.execute_script(
        "return [document.querySelector('nav a').getAttribute('href'), document.querySelector('section').id];")
    assert first == ["#claims", "claims"], first
    assert panels, "a claims section without a claim panel"
    for claim, verdict, badges, _ in panels:
        assert len(badges) == 1, (claim, badges)
        cls, text, background, width = badges[0]
        assert verdict in VERDICT_COLORS and verdict_class(verdict) in cls.split() and text == verdict, (claim, cls)
        assert background == _rgb(VERDICT_COLORS[verdict]) and width > 0, (claim, background, width)
    in_claims = [i for i in images if i[4]]
    assert len(in_claims) == sum(n for *_, n in panels)
    assert all(width > 0 for _, _, width, _, _ in in_claims), in_claims


@pytest.mark.slow
def test_quick_demo_report_renders_in_chromium(quick_demo_run, tmp_path):
    run, _ = quick_demo_run
    report = run / "report.html"
    assert report.is_file()
    driver = _browser(tmp_path / "chromium-profile")
    try:
        driver.get(report.resolve().as_uri())
        # a screenshot of the whole page, for a person to look at when this fails (kept in tmp_path)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 100)
        assert driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000

        assert driver.title.startswith("reweightlab report") and run.name in driver.title
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight, "
            "i.closest('#claims') !== null]);")
        # pass@k, gain vs KL, free-energy sweep, training curves, regime transitions: one figure each (the claims
        # section, when the demo wrote claims.json, adds its own figures; they are checked below)
        assert len([i for i in images if not i[4]]) == 5, images
        for alt, complete, width, height, _ in images:
            assert complete and width > 0 and height > 0, f"figure did not load: {alt}"
        _check_claims(driver, images)
        boxes = driver.execute_script(
            "return Array.from(document.querySelectorAll('svg')).map(s => s.getBoundingClientRect().width);")
        assert all(w > 0 for w in boxes)  # figures are <img>; any inline svg must have a size too
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe

        # per rule, the across-seeds and revision tables: the base, then one row per demo method; and the per-seed
        # table and the support table: one row per trained model (every method x every training seed)
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).filter(t => !t.closest('#claims'))"
            ".map(t => [t.className, t.dataset.variant, "
            "Array.from(t.querySelectorAll('tbody tr')).map(r => r.dataset.model)]);")
        labels = list(json.loads((run / "summary.json").read_text())["labels"])
        assert len(labels) >= 2 * len(DEMO_METHODS) - 1  # every arm x 2 seeds; the untrained control once
        assert rows == [["methods", "id", ["base", *DEMO_METHODS]], ["methods", "ood", ["base", *DEMO_METHODS]],
                        ["versus", "id", labels], ["versus", "ood", labels],
                        ["support", "id", labels], ["support", "ood", labels],
                        # the quick demo probes with revision episodes: attempt 1 and within R per method
                        ["revision", "id", ["base", *DEMO_METHODS]], ["revision", "ood", ["base", *DEMO_METHODS]]]
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.versus tbody td')).map(c => c.innerText);")
        assert any("[" in c and "]" in c for c in cells)  # values with their 95% intervals
        text = driver.find_element("tag name", "body").text
        for section in SECTIONS:
            assert section.title in text
        captions = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure figcaption')).filter(c => !c.closest('#claims'))"
            ".map(c => c.children.length);")
        assert captions == [2, 2, 2, 2, 2]  # two lines under each figure
        assert "Each line is one model's pass@k" in text and "Each point is one trained model" in text
        assert "The free-energy gap F_beta[model]" in text
        # nothing on the page sits on anything else: under each figure its caption, and no figure wider than
        # its column (the screenshot above is what a person sees)
        placed = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure')).filter(f => f.querySelector('img'))"
            ".map(f => {const i = f.querySelector('img').getBoundingClientRect(), "
            "c = f.querySelector('figcaption'), p = f.parentElement.getBoundingClientRect(); "
            "return [i.bottom, c ? c.getBoundingClientRect().top : null, i.left, i.right, p.left, p.right];});")
        assert sum(ct is not None for _, ct, *_ in placed) >= 5, placed
        assert all((ct is None or ib <= ct + 0.5) and pl - 0.5 <= il and ir <= pr + 0.5
                   for ib, ct, il, ir, pl, pr in placed), placed
    finally:
        driver.quit()


@pytest.mark.slow
def test_quick_demo_figures_have_no_overlapping_labels(quick_demo_run, tmp_path, monkeypatch):
    """Every figure of the quick demo's report, drawn again: no label overlaps another or runs off its
    figure (figures.layout_problems, whose own controls are in tests/unit/test_report_layout.py)."""
    run, _ = quick_demo_run
    drawn = []
    original = figures._picture

    def keep(fig, alt):
        drawn.append((alt, figures.layout_problems(fig)))
        return original(fig, alt)

    monkeypatch.setattr(figures, "_picture", keep)
    write_report([run], tmp_path / "again.html")
    assert len(drawn) >= 5
    assert not [(alt, p) for alt, p in drawn if p], [(alt, p[:4]) for alt, p in drawn if p]
