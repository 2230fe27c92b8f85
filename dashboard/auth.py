"""Optional login through Panel's OAuth providers, and who may open the ops page.

Panel owns the login and reads its own variables: ``PANEL_OAUTH_PROVIDER``,
``PANEL_OAUTH_KEY``, ``PANEL_OAUTH_SECRET``, ``PANEL_COOKIE_SECRET``,
``PANEL_OAUTH_ENCRYPTION``, ``PANEL_OAUTH_REDIRECT_URI`` and ``PANEL_OAUTH_EXTRA_PARAMS``
(`panel.config`). This module checks that a login asked for is complete before serving, and
decides who may open the ops page (``AIRPARADIS_DASHBOARD_OPS_GROUP``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dashboard.settings import DashboardSettings

OPS_PATH = "/ops"

REQUIRED = ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET", "PANEL_COOKIE_SECRET")
"""What Panel needs besides the provider: the client id and secret, and the cookie key."""

RETIRED = {
    f"AIRPARADIS_DASHBOARD_{old}": new
    for old, new in (
        ("OAUTH_PROVIDER", "PANEL_OAUTH_PROVIDER"), ("OAUTH_KEY", "PANEL_OAUTH_KEY"),
        ("OAUTH_SECRET", "PANEL_OAUTH_SECRET"), ("COOKIE_SECRET", "PANEL_COOKIE_SECRET"),
        ("OAUTH_ENCRYPTION_KEY", "PANEL_OAUTH_ENCRYPTION"),
        ("OAUTH_REDIRECT_URI", "PANEL_OAUTH_REDIRECT_URI"),
        ("OAUTH_EXTRA_PARAMS", "PANEL_OAUTH_EXTRA_PARAMS"),
    )
}  # fmt: skip
"""The dashboard's former login variables: one still set would silently leave the login off,
so the dashboard refuses to start and names Panel's variable instead."""


class AuthMisconfigured(ValueError):
    """OAuth is asked for but a required setting is missing (or set under a retired name)."""


def oauth_provider() -> str | None:
    """The provider Panel's configuration names (``PANEL_OAUTH_PROVIDER``); None: no login."""
    import panel as pn

    return pn.config.oauth_provider or None


def oauth_options() -> dict[str, Any]:
    """Keyword arguments of ``pn.serve`` that turn the login on; empty when it is off. The
    rest of the login Panel reads from its own variables."""
    retired = sorted(name for name in RETIRED if os.environ.get(name))
    if retired:
        renames = ", ".join(f"{name} -> {RETIRED[name]}" for name in retired)
        raise AuthMisconfigured(f"the dashboard's login now takes Panel's variables: {renames}")
    provider = oauth_provider()
    if provider is None:
        return {}
    from panel.auth import AUTH_PROVIDERS

    if provider not in AUTH_PROVIDERS:
        raise AuthMisconfigured(
            f"PANEL_OAUTH_PROVIDER={provider!r} is not one of Panel's: {sorted(AUTH_PROVIDERS)}"
        )
    import panel as pn

    values = (pn.config.oauth_key, pn.config.oauth_secret, pn.config.cookie_secret)
    missing = [name for name, value in zip(REQUIRED, values, strict=True) if not value]
    if missing:
        raise AuthMisconfigured(f"OAuth provider {provider!r} also needs {', '.join(missing)}")
    return {"oauth_provider": provider}


def user_groups(user_info: Mapping[str, Any] | None, claim: str) -> set[str]:
    """Groups listed in the id token's `claim` (Azure AD: ``groups``; app roles: ``roles``)."""
    if not user_info:
        return set()
    groups = user_info.get(claim)
    if isinstance(groups, str):
        return {groups}
    if isinstance(groups, list | tuple | set):
        return {str(g) for g in groups}
    return set()


def may_open_ops(settings: DashboardSettings, user_info: Mapping[str, Any] | None) -> bool:
    """True without login or without an ops group; else only for members of the ops group."""
    if oauth_provider() is None or not settings.ops_group:
        return True
    return settings.ops_group in user_groups(user_info, settings.groups_claim)


def authorize_callback(
    settings: DashboardSettings,
) -> Callable[[dict[str, Any] | None, str], bool]:
    """Panel's ``authorize_callback``: every signed-in user sees ``/``, the ops group ``/ops``."""

    def authorize(user_info: dict[str, Any] | None, request_path: str) -> bool:
        if request_path.rstrip("/").endswith(OPS_PATH):
            return may_open_ops(settings, user_info)
        return True

    return authorize
