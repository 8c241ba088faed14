"""Every page of every role in Chromium at phone (390 px) and desktop (1280 px) width.

No page may scroll sideways: ``document.documentElement.scrollWidth <= innerWidth``. Wide tables
scroll inside their own card (``.table-wrap``), never the page. The pages are the ones each role's
crawl reached (tests/site.py), so pages added later are measured too. Screenshots of each page (once,
as the first role that reaches it) land in test-artifacts/pages/ for a person to look at.
"""

from __future__ import annotations

import os
import re

import pytest

from conftest import PASSWORD
from revexos.accounts.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
# Which role's view of a page is photographed: the one that sees the most of it.
SHOT_ORDER = [Role.FINANCE, Role.ADMIN, Role.ACCOUNT_MANAGER, Role.VIEWER]
# Pages that differ by role are photographed for every role (home-account_manager-phone.png …).
PER_ROLE_SHOTS = {"home"}
OVERFLOW = """() => {
  const doc = document.documentElement;
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.table-wrap, .scroll-x'))
    .filter(el => getComputedStyle(el).position !== 'fixed')
    .slice(0, 5)
    .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + ' → ' + Math.round(el.getBoundingClientRect().right));
  return {scroll: doc.scrollWidth, inner: window.innerWidth, wide};
}"""


def _slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"


def _sign_in(page, tenant, base: str, role: str) -> None:
    page.goto(tenant.url(base, "/accounts/login/"))
    page.fill("#id_username", tenant.users[role])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def _shot_role(demo_crawls) -> dict[str, str]:
    """view name → the role whose screenshot of it is kept."""
    chosen: dict[str, str] = {}
    for role in SHOT_ORDER:
        for view in demo_crawls[role.value].pages():
            chosen.setdefault(view, role.value)
    return chosen


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_no_page_scrolls_sideways_on_a_phone(browser, committed_db, live_server_url, tenant_demo, demo_crawls, role):
    shots_dir = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts", "pages")
    os.makedirs(shots_dir, exist_ok=True)
    keep = _shot_role(demo_crawls)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(20000)
    try:
        _sign_in(page, tenant_demo, live_server_url, role)
        # The menu is reachable on a phone: the toggle opens the navigation.
        page.click(".menu-toggle")
        assert page.locator("#sidebar nav").is_visible()
        problems = []
        for view, visit in sorted(demo_crawls[role].pages().items()):
            for size in (PHONE, DESKTOP):
                page.set_viewport_size(size)
                page.goto(tenant_demo.url(live_server_url, visit.url))
                page.wait_for_load_state("load")
                measured = page.evaluate(OVERFLOW)
                if measured["scroll"] > measured["inner"]:
                    problems.append(
                        f"{visit.url} at {size['width']} px: page is {measured['scroll']} px wide; {measured['wide']}"
                    )
                if keep.get(view) == role or view in PER_ROLE_SHOTS:
                    who = f"-{role}" if view in PER_ROLE_SHOTS else ""
                    name = f"{_slug(view)}{who}-{'phone' if size is PHONE else 'desktop'}.png"
                    page.screenshot(path=os.path.join(shots_dir, name), full_page=True)
        assert not problems, "\n".join(problems)
    finally:
        context.close()
