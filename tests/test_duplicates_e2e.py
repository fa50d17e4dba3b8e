"""The Duplicates tab and the "similar" action in Chromium, against ``bogv serve``.

A person cleaning up: open the tab (it checks the new images, saying how far it is), see
each group with the image to keep first, look at an image's neighbours, say one group is not
duplicates (it stays gone after a reload), keep one image of the other (the rest is
deleted, but not by a tab that listed the group before another kept it). Screenshots go to
``artifacts/screenshots/`` like the main page test's.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from .conftest import Served
from .images import edited_copy, encode, photo
from .test_web_e2e import TOKEN, browser, pytestmark, served_env, shot, watch_errors

__all__ = ["browser", "pytestmark", "served_env"]  # shared with the main page test: the
# fixtures, and the skip where no chromium is installed


def test_resolve_duplicates_in_a_browser(served: Served, browser: Browser,
                                         photos: dict[str, bytes]) -> None:
    images = {"coffee": photos["coffee"], "chelsea": photos["chelsea"],
              "rocket": photos["rocket"], "coffee-small": edited_copy(photo("coffee")),
              "chelsea-q20": encode(photo("chelsea"), quality=20)}
    with api_of(served) as api:
        add(api, images)
    context, page, errors = new_page(browser)
    # The browser holds the first scan back, and the progress it hears is made up, so the
    # tab is seen mid-scan (the first scan of 100k images takes about twenty minutes).
    held: list[Route] = []
    page.route("**/api/image/sim/duplicates/scan", lambda route: held.append(route))
    midway = {"scanning": {"done": 600, "total": 1000, "seconds": 30.0}, "grouping": None}
    page.route("**/api/image/sim/duplicates/progress", lambda route: route.fulfill(
        json={"msg": "success", "code": 200, "data": midway}))
    page.goto(served.url)
    expect(page.locator("#stats")).to_have_text(re.compile(r"^5 images"))

    # 1. The tab checks the new images, saying how far it is while it does (a bar and the
    # time left), and shows two groups, the original to keep first.
    page.get_by_role("tab", name="Duplicates").click()
    status = page.locator("#duplicates-status")
    expect(status).to_have_text(
        "Checking new images for copies: 600 of 1000 images, about 20 s left…")
    bar = page.get_by_role("progressbar", name="Scan progress")
    expect(bar).to_have_attribute("value", "600")
    expect(bar).to_have_attribute("max", "1000")
    shot(page, "dups-00-scan-progress")
    midway.update(scanning=None, grouping={"done": 1, "total": 4, "seconds": 300.0})
    expect(status).to_have_text("Making groups: 1 of 4 images, about 15 min left…")
    page.unroute("**/api/image/sim/duplicates/progress")
    held[0].continue_()
    page.unroute("**/api/image/sim/duplicates/scan")
    expect(status).to_have_text("Checked 5 new images. 2 groups of copies.")
    expect(bar).to_be_hidden()
    groups = page.locator("#groups > li")
    expect(groups).to_have_count(2)
    for group in groups.all():
        expect(group.locator(".card").first.locator(".keep-badge")).to_have_text("keep")
        expect(group.locator(".card").nth(1).locator(".match")).to_have_text("copy")
    keys = [g.locator(".card dd").first.inner_text() for g in groups.all()]
    assert sorted(keys) == ["chelsea", "coffee"]
    page.wait_for_function("() => [...document.querySelectorAll('#groups img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "dups-01-groups")

    # 2. "Similar" on a copy: the search tab shows its neighbours, its original first.
    coffee = groups.filter(has_text="coffee-small")
    coffee.locator(".card", has_text="coffee-small").get_by_role(
        "button", name=re.compile(r"^Images similar to record")).click()
    expect(page.get_by_role("tab", name="Search")).to_have_attribute("aria-selected", "true")
    results = page.locator("#results > li")
    expect(results).to_have_count(4)  # every other record; the query record is not a hit
    expect(results.first.locator("dd").first).to_have_text("coffee")
    expect(results.first.locator(".match")).to_have_text("copy")
    page.wait_for_function("() => document.querySelector('#query-preview').naturalWidth > 0")
    shot(page, "dups-02-similar")

    # 3. Not duplicates: the chelsea group goes, and stays gone after a reload.
    page.get_by_role("tab", name="Duplicates").click()
    chelsea = groups.filter(has_text="chelsea-q20")
    chelsea.get_by_role("button", name=re.compile(r"is not duplicates$")).click()
    expect(groups).to_have_count(1)
    page.reload()
    page.get_by_role("tab", name="Duplicates").click()
    expect(status).to_have_text("1 group of copies.")
    expect(groups).to_have_count(1)

    # 4. Keep only the original: its copy is deleted through the normal delete. Another
    # tab showing the group since before keeps the copy instead: the original it would
    # delete is left, since it is all there is now of the picture.
    context_before, before, before_errors = new_page(browser)
    before.goto(served.url)
    before.get_by_role("tab", name="Duplicates").click()
    expect(before.locator("#groups > li")).to_have_count(1)
    groups.first.locator(".card").first.get_by_role(
        "button", name=re.compile(r"^Keep record \d+")).click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text("delete the 1 other image")
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(groups).to_have_count(0)
    expect(status).to_have_text(re.compile(r"^Kept record \d+; deleted 1 record\.$"))
    expect(page.locator("#stats")).to_have_text(re.compile(r"^4 images"))
    before.locator("#groups .card", has_text="coffee-small").get_by_role(
        "button", name=re.compile(r"^Keep record \d+")).click()
    before.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(before.locator("#duplicates-status")).to_have_text(
        "Deleted 0 records. 1 image was not deleted: the groups changed since they were "
        "listed. No copies found.")
    expect(before.locator("#stats")).to_have_text(re.compile(r"^4 images"))
    shot(before, "dups-05-kept-elsewhere")
    assert before_errors == []
    context_before.close()
    page.get_by_role("button", name="Check new images").click()
    expect(status).to_have_text("No copies found.")
    shot(page, "dups-03-resolved")

    # 5. Browse cards have "similar" too.
    page.get_by_role("tab", name="Browse").click()
    page.locator("#records .card", has_text="chelsea-q20").get_by_role(
        "button", name=re.compile(r"^Images similar to record")).click()
    expect(results.first.locator("dd").first).to_have_text("chelsea")
    assert page.locator("#duplicates-status").inner_text() == "No copies found."  # no poll left
    assert errors == []
    context.close()


def test_the_tab_waits_for_a_scan_and_keeps_all_suggested(served: Served, browser: Browser,
                                                          photos: dict[str, bytes]) -> None:
    """A scan outlives a proxy's timeout (the first scan of 100k images takes about twenty
    minutes), or runs from another tab or from before a reload (409): the tab follows it to
    its end and shows the groups instead of an error. Any other error is still shown.
    "Keep all suggested" deletes every member but the one to keep, after one question."""
    with api_of(served) as api:
        add(api, {"coffee": photos["coffee"], "coffee-small": edited_copy(photo("coffee"))})
        context, page, errors = new_page(browser)
        page.goto(served.url)
        status = page.locator("#duplicates-status")
        midway = {"scanning": {"done": 1, "total": 2, "seconds": 1.0}, "grouping": None,
                  "elsewhere": False, "scanning_elsewhere": None}
        elsewhere = {"scanning": None, "grouping": None, "elsewhere": True,
                     "scanning_elsewhere": None}
        running = {"status": 409, "json": {
            "msg": "a duplicate scan is already running (here or on another replica sharing "
                   "RECORD_DIR); try again when it ends", "code": 409, "data": None}}
        answers = [
            # what a reverse proxy answers when the scan outlasts its timeout
            ({"status": 504, "content_type": "text/html",
              "body": "<html><body><h1>504 Gateway Time-out</h1></body></html>"}, midway,
             "Checking new images for copies: 1 of 2 images…"),
            # a scan already running, started from another tab
            (running, midway, "Checking new images for copies: 1 of 2 images…"),
            # ... or on another replica, before it noted its progress, and after
            (running, elsewhere, "Another replica is checking new images for copies…"),
            (running, {**elsewhere, "scanning_elsewhere": midway["scanning"]},
             "Another replica is checking new images for copies: 1 of 2 images…"),
        ]
        for answer, progress, says in answers:
            page.route("**/api/image/sim/duplicates/scan", functools.partial(fulfil, answer))
            page.route("**/api/image/sim/duplicates/progress", functools.partial(
                lambda data, route: route.fulfill(json={"msg": "success", "code": 200,
                                                        "data": data}), progress))
            if answer["status"] == 504:
                page.get_by_role("tab", name="Duplicates").click()
            else:
                page.get_by_role("button", name="Check new images").click()
            expect(status).to_have_text(says)
            # the scan the service runs meanwhile, then its real progress: none running
            assert api.post("/duplicates/scan").json()["code"] == 200
            page.unroute("**/api/image/sim/duplicates/progress")
            page.unroute("**/api/image/sim/duplicates/scan")
            expect(status).to_have_text("1 group of copies.")
            expect(page.locator("#groups > li")).to_have_count(1)
            expect(page.get_by_role("progressbar", name="Scan progress")).to_be_hidden()

        # Keep all suggested: one question for every group, the other members deleted.
        page.get_by_role("button", name="Keep the suggested image of every group, delete "
                         "the others").click()
        confirm = page.get_by_role("dialog")
        expect(confirm).to_contain_text("Keep the suggested image of the group and delete "
                                        "the 1 other image? This cannot be undone.")
        shot(page, "dups-04-keep-all")
        expect(page.locator("#dups-keep-all")).to_be_disabled()  # until this one ends
        confirm.get_by_role("button", name="Delete", exact=True).click()
        expect(status).to_have_text("Kept the suggested image of 1 group; deleted 1 record. "
                                    "No copies found.")
        expect(page.locator("#stats")).to_have_text(re.compile(r"^1 image"))
        expect(page.locator("#dups-keep-all")).to_be_hidden()
        expect(page.locator("#dups-keep-all")).to_be_enabled()
        kept = api.get("/records").json()["data"]["records"]
        assert [r["key"] for r in kept] == ["coffee"]

        page.route("**/api/image/sim/duplicates/scan", functools.partial(fulfil, {
            "status": 503, "json": {"msg": "the store is unavailable", "code": 503,
                                    "data": None}}))
        page.get_by_role("button", name="Check new images").click()
        expect(status).to_have_text("Could not scan: the store is unavailable (503)")
        assert [e for e in errors if "Failed to load resource" not in e] == []
        context.close()


def fulfil(answer: dict[str, Any], route: Route) -> None:
    route.fulfill(**answer)


def api_of(served: Served) -> httpx.Client:
    return httpx.Client(base_url=f"{served.url}/api/image/sim", headers={"token": TOKEN},
                        timeout=120)


def add(api: httpx.Client, images: dict[str, bytes]) -> None:
    for name, data in images.items():
        api.post("/add/file", files={"file": (f"{name}.jpg", data)},
                 data={"key": name}).raise_for_status()


def new_page(browser: Browser) -> tuple[BrowserContext, Page, list[str]]:
    """A tab holding the token (as after the prompt), and the errors it logs."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('bogv.token', {json.dumps(TOKEN)})")
    page = context.new_page()
    return context, page, watch_errors(page)
