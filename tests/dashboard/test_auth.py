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
    "PANEL_OAUTH_PROVIDER": "azure",
    "PANEL_OAUTH_KEY": "client-id",
    "PANEL_OAUTH_SECRET": "client-secret",
    "PANEL_COOKIE_SECRET": "cookie-secret",
    "PANEL_OAUTH_EXTRA_PARAMS": '{"tenant": "tenant-id"}',
}
"""Azure AD login as the chart configures it: Panel's own variables."""
OPS = {"ops_group": "ops-group-id"}


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AZURE.items():
        monkeypatch.setenv(name, value)


def test_login_is_off_by_default() -> None:
    settings = settings_for("http://x")
    assert oauth_options() == {}
    assert may_open_ops(settings, None)
    assert authorize_callback(settings)(None, "/ops")


@pytest.mark.usefixtures("azure")
def test_azure_ad_login_is_panels_own_configuration() -> None:
    assert oauth_options() == {"oauth_provider": "azure"}
    # The rest reaches pn.serve through panel.config, which reads the same variables.
    assert (pn.config.oauth_key, pn.config.oauth_secret) == ("client-id", "client-secret")
    assert pn.config.oauth_extra_params == {"tenant": "tenant-id"}


def test_missing_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_OAUTH_PROVIDER", "azure")
    monkeypatch.setenv("PANEL_OAUTH_KEY", "id")
    with pytest.raises(AuthMisconfigured, match=r"PANEL_OAUTH_SECRET, PANEL_COOKIE_SECRET"):
        oauth_options()
    monkeypatch.setenv("PANEL_OAUTH_PROVIDER", "azuer")
    with pytest.raises(AuthMisconfigured, match=r"'azuer' is not one of Panel's"):
        oauth_options()


def test_a_retired_login_variable_is_refused_with_its_new_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A variable the dashboard no longer reads would leave the login silently off."""
    monkeypatch.setenv("AIRPARADIS_DASHBOARD_OAUTH_PROVIDER", "azure")
    with pytest.raises(
        AuthMisconfigured, match="AIRPARADIS_DASHBOARD_OAUTH_PROVIDER -> PANEL_OAUTH_PROVIDER"
    ):
        oauth_options()


@pytest.mark.usefixtures("azure")
def test_ops_group_from_the_groups_claim() -> None:
    settings = settings_for("http://x", **OPS)
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
    roles = settings_for("http://x", **{**OPS, "groups_claim": "roles"})
    assert may_open_ops(roles, {"roles": ["ops-group-id"]})


def test_pages_build_and_the_ops_page_is_denied_outside_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Outside a server there is no signed-in user: the ops group check denies.
    for name, value in AZURE.items():
        monkeypatch.setenv(name, value)
    denied = ops_app(settings_for("http://127.0.0.1:9", **OPS))
    assert isinstance(denied.main[0], pn.pane.Alert)
    assert "restricted" in str(denied.main[0].object)

    monkeypatch.delenv("PANEL_OAUTH_PROVIDER")
    opened = ops_app(settings_for("http://127.0.0.1:9", registry_enabled=False))
    assert "ap-page" in opened.main[0].css_classes
    page = user_app(settings_for("http://127.0.0.1:9"))
    assert isinstance(page, pn.template.BaseTemplate)
