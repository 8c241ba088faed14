"""A new company signs up, signs in and sees its home dashboard; roles see their own navigation."""

from __future__ import annotations

import uuid

import pytest

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sign_up_then_sign_in_and_see_the_home_dashboard(page, shot, live_server_url):
    slug = f"e2e-{uuid.uuid4().hex[:6]}"
    page.goto(live_server_url + "/")
    shot("landing")
    page.fill("#id_company_name", "Pied Piper")
    page.fill("#id_slug", slug)
    page.fill("#id_admin_email", "richard@piedpiper.example")
    page.fill("#id_password", "Middle-out-compression-1")
    # Sign-up creates the workspace's schema (every migration): allow for a busy machine.
    page.set_default_timeout(90000)
    page.click("button[type=submit]")
    page.wait_for_url(f"**//{slug}.localhost:*/accounts/login/**")
    page.set_default_timeout(15000)
    assert page.input_value("#id_username") == "richard@piedpiper.example"
    shot("tenant-login")
    page.fill("#id_password", "Middle-out-compression-1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")
    assert page.locator("#panel-setup").is_visible()
    assert "Pied Piper" in page.content()
    shot("home")


def test_sign_up_errors_are_shown_next_to_the_fields(page, shot, live_server_url, tenant_a):
    page.goto(live_server_url + "/")
    page.fill("#id_company_name", "Taken Inc")
    page.fill("#id_slug", tenant_a.slug)
    page.fill("#id_admin_email", "someone@example.com")
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    page.wait_for_selector("#id_slug_error")
    assert "already taken" in page.inner_text("#id_slug_error")
    assert "too common" in page.inner_text("#id_password_error")
    shot("errors")


def test_a_viewer_sees_no_settings_and_gets_403_on_admin_pages(page, shot, live_server_url, tenant_a):
    page.goto(tenant_a.url(live_server_url, "/accounts/login/"))
    page.fill("#id_username", tenant_a.users["viewer"])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")
    assert page.locator("nav >> text=Users").count() == 0
    response = page.goto(tenant_a.url(live_server_url, "/accounts/users/"))
    assert response.status == 403
    shot("viewer-403")


def test_the_shell_works_on_a_phone(page, shot, live_server_url, tenant_a):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(tenant_a.url(live_server_url, "/accounts/login/"))
    page.fill("#id_username", tenant_a.users["admin"])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")
    page.click(".menu-toggle")
    assert page.locator("nav >> text=Users").is_visible()
    shot("phone")
