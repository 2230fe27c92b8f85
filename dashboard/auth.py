"""Optional login through Panel's OAuth providers, and who may open the ops page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dashboard.settings import DashboardSettings

OPS_PATH = "/ops"


class AuthMisconfigured(ValueError):
    """OAuth is asked for but a required setting is missing."""


def oauth_options(settings: DashboardSettings) -> dict[str, Any]:
    """Keyword arguments of ``pn.serve`` that turn the login on; empty when it is off."""
    if not settings.oauth_enabled:
        return {}
    missing = [
        name
        for name, value in (
            ("oauth_key", settings.oauth_key),
            ("oauth_secret", settings.oauth_secret),
            ("cookie_secret", settings.cookie_secret),
        )
        if not value
    ]
    if missing:
        names = ", ".join(f"AIRPARADIS_DASHBOARD_{m.upper()}" for m in missing)
        raise AuthMisconfigured(f"OAuth provider {settings.oauth_provider!r} also needs {names}")
    options: dict[str, Any] = {
        "oauth_provider": settings.oauth_provider,
        "oauth_key": settings.oauth_key,
        "oauth_secret": _secret(settings.oauth_secret),
        "cookie_secret": _secret(settings.cookie_secret),
        "oauth_extra_params": dict(settings.oauth_extra_params),
    }
    if settings.oauth_redirect_uri:
        options["oauth_redirect_uri"] = settings.oauth_redirect_uri
    if settings.oauth_encryption_key is not None:
        options["oauth_encryption_key"] = _secret(settings.oauth_encryption_key)
    return options


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
    if not settings.oauth_enabled or not settings.ops_group:
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


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())
