"""The page in a real browser: Debian's chromium, driven by Playwright, against ``bogv serve``.

A person's path through the page: give the token once, drop two photos to add them, search
with an edited copy of one (picked, then pasted), find the original first with its thumbnail,
delete it, see it gone. Each step
leaves a screenshot in ``artifacts/screenshots/`` (ignored by git) for a human to look at.
Skipped only where no chromium is installed; CI installs it and sets BOGV_REQUIRE_BROWSER=1,
which turns that skip into a failure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, JSHandle, Page, expect, sync_playwright

from .conftest import Served
from .images import edited_copy, photo

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TOKEN = "e2e-s3cret"
_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("BOGV_REQUIRE_BROWSER"),
    reason=f"no browser at {CHROMIUM} (apt-get install chromium); CI installs it")


@pytest.fixture
def served_env() -> dict[str, str]:
    return {"TOKEN": TOKEN, "LOG_FORMAT": "json"}


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=_ARGS)
        yield browser
        browser.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and "401" not in msg.text and "404" not in msg.text else None)
    return errors


def files_in_page(page: Page, files: dict[str, bytes]) -> JSHandle:
    """A DataTransfer holding these files, as a drop or a paste carries them."""
    return page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const [name, b64] of files) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
        }
        return dt;
    }""", [[name, base64.b64encode(data).decode()] for name, data in files.items()])


def thumbnail_shown(page: Page, card: str) -> bool:
    return bool(page.eval_on_selector(
        f"{card} img", "img => img.complete && img.naturalWidth > 0 && "
        "img.src.startsWith('blob:')"))


def test_add_search_delete_in_a_browser(served: Served, browser: Browser, tmp_path: Path,
                                        photos: dict[str, bytes]) -> None:
    chelsea = tmp_path / "chelsea.jpg"
    chelsea.write_bytes(photos["chelsea"])
    query = tmp_path / "coffee-edited.jpg"
    query.write_bytes(edited_copy(photo("coffee")))
    coffee_key = hashlib.md5(photos["coffee"]).hexdigest()
    chelsea_key = hashlib.md5(photos["chelsea"]).hexdigest()

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = watch_errors(page)
    page.goto(served.url)
    stats = page.locator("#stats")

    # 1. The service needs a token: the page asks once.
    dialog = page.get_by_role("dialog", name="Token required")
    expect(dialog).to_be_visible()
    shot(page, "01-token-prompt")
    dialog.get_by_label("Token").fill(TOKEN)
    dialog.get_by_role("button", name="Continue").click()
    expect(stats).to_have_text(re.compile(r"^0 images · efficientnet-lite0-fp32:.* · milvus-lite"))
    page.reload()  # kept for the session: no second prompt
    expect(stats).to_have_text(re.compile(r"^0 images"))
    expect(dialog).to_be_hidden()

    # 2. Add two photos, dropped together; the keyboard moves between tabs.
    page.get_by_role("tab", name="Search").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Add")).to_have_attribute("aria-selected", "true")
    dropped = files_in_page(page, {f"{name}.jpg": photos[name] for name in ("coffee", "chelsea")})
    page.locator("#add-drop").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.locator("#add-chosen")).to_have_text("2 files: coffee.jpg, chelsea.jpg")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#add-status")).to_have_text("2 added, 0 already indexed, 0 failed.")
    expect(page.locator("#add-results li .outcome")).to_have_text(
        [re.compile(r"^added \(id \d+\)$")] * 2)
    expect(stats).to_have_text(re.compile(r"^2 images"))
    shot(page, "02-added")

    # 3. Search with an edited copy (the file picker): the original first, with its thumbnail.
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-file").set_input_files(query)
    results = page.locator("#results > li")
    expect(results).to_have_count(2)
    first = results.first
    expect(first.locator("dd").first).to_have_text(coffee_key)
    expect(first).to_contain_text("coffee.jpg")
    page.wait_for_function("() => [...document.querySelectorAll('#results img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert thumbnail_shown(page, "#results > li:first-child")
    scores = [float(s) for s in page.locator("#results .score").all_inner_texts()]
    assert scores[0] >= 0.5 > scores[1]  # calibrated: 0.5 and above is an edited copy
    shot(page, "03-search-results")

    # 4. Delete it, after a confirmation.
    first.get_by_role("button", name=re.compile(r"^Delete record \d+$")).click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text("cannot be undone")
    shot(page, "04-confirm-delete")
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(results).to_have_count(1)
    expect(page.locator("#search-status")).to_have_text("Deleted 1 record.")
    expect(stats).to_have_text(re.compile(r"^1 image "))

    # 5. Gone: a new search (pasted this time) and the browse tab show only the other photo.
    pasted = files_in_page(page, {"clipboard.jpg": query.read_bytes()})
    page.evaluate("(dt) => document.dispatchEvent(new ClipboardEvent('paste', "
                  "{ clipboardData: dt, bubbles: true }))", pasted)
    expect(page.locator("#search-status")).to_have_text(re.compile(r"^1 result in"))
    expect(results.first.locator("dd").first).to_have_text(chelsea_key)
    page.get_by_role("tab", name="Browse").click()
    records = page.locator("#records > li")
    expect(records).to_have_count(1)
    expect(records.first.locator("dd").first).to_have_text(chelsea_key)
    page.wait_for_function("() => document.querySelector('#records img').naturalWidth > 0")
    shot(page, "05-deleted-and-gone")
    assert errors == []

    # 6. On a phone: the token comes from this tab's session; the same search fits the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                is_mobile=True, has_touch=True)
    phone.add_init_script(f"sessionStorage.setItem('bogv.token', {json.dumps(TOKEN)})")
    small = phone.new_page()
    small.goto(served.url)
    small.locator("#search-file").set_input_files(chelsea)
    expect(small.locator("#results > li")).to_have_count(1)
    small.wait_for_function("() => document.querySelector('#results img').naturalWidth > 0")
    assert small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    shot(small, "06-phone-search")
    phone.close()

    # The service logged every request as one JSON object, the page's 401s included.
    lines = [json.loads(line) for line in served.log.read_text().splitlines() if line]
    access = [(e["method"], e["path"], e["status"]) for e in lines if e["logger"] == "bogv.access"]
    assert ("GET", "/api/image/sim/stats", 401) in access
    assert access.count(("POST", "/api/image/sim/add/file", 200)) == 2
    assert ("POST", "/api/image/sim/del/id", 200) in access
