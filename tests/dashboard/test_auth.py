"""Login is off by default; with it, the ops page is for the ops group only."""

from __future__ import annotations

import panel as pn
import pytest

from dashboard.app import ops_app, user_app
from dashboard.auth import (
    AuthMisconfigured,
    authorize_callback,
    may_open_ops,
    oauth_options,
    user_groups,
)
from tests.dashboard.conftest import settings_for

AZURE = {
    "oauth_provider": "azure",
    "oauth_key": "client-id",
    "oauth_secret": "client-secret",
    "cookie_secret": "cookie-secret",
    "oauth_extra_params": {"tenant": "tenant-id"},
    "ops_group": "ops-group-id",
}


def test_login_is_off_by_default() -> None:
    settings = settings_for("http://x")
    assert oauth_options(settings) == {}
    assert may_open_ops(settings, None)
    assert authorize_callback(settings)(None, "/ops")


def test_azure_ad_options_for_panel() -> None:
    options = oauth_options(settings_for("http://x", **AZURE))
    assert options == {
        "oauth_provider": "azure",
        "oauth_key": "client-id",
        "oauth_secret": "client-secret",
        "cookie_secret": "cookie-secret",
        "oauth_extra_params": {"tenant": "tenant-id"},
    }
    assert "client-secret" not in repr(settings_for("http://x", **AZURE))


def test_missing_secret_is_refused() -> None:
    settings = settings_for("http://x", oauth_provider="azure", oauth_key="id")
    with pytest.raises(AuthMisconfigured, match=r"OAUTH_SECRET.*COOKIE_SECRET"):
        oauth_options(settings)


def test_ops_group_from_the_groups_claim() -> None:
    settings = settings_for("http://x", **AZURE)
    member = {"email": "a@airparadis.example", "groups": ["other", "ops-group-id"]}
    outsider = {"email": "b@airparadis.example", "groups": ["other"]}
    assert user_groups(member, "groups") == {"other", "ops-group-id"}
    assert user_groups({"groups": "one"}, "groups") == {"one"}
    assert may_open_ops(settings, member)
    assert not may_open_ops(settings, outsider)
    assert not may_open_ops(settings, None)
    authorize = authorize_callback(settings)
    assert authorize(outsider, "/") and not authorize(outsider, "/ops")
    assert authorize(member, "/ops")
    roles = settings_for("http://x", **{**AZURE, "groups_claim": "roles"})
    assert may_open_ops(roles, {"roles": ["ops-group-id"]})


def test_pages_build_and_the_ops_page_is_denied_outside_the_group() -> None:
    # Outside a server there is no signed-in user: the ops group check denies.
    denied = ops_app(settings_for("http://127.0.0.1:9", **AZURE))
    assert isinstance(denied.main[0], pn.pane.Alert)
    assert "restricted" in str(denied.main[0].object)

    opened = ops_app(settings_for("http://127.0.0.1:9", registry_enabled=False))
    assert "ap-page" in opened.main[0].css_classes
    page = user_app(settings_for("http://127.0.0.1:9"))
    assert isinstance(page, pn.template.BaseTemplate)
