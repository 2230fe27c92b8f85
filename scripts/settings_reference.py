"""Write docs/settings.md from the settings classes, so that every setting is documented and
nothing documented is missing from the code: `--check` exits 1 when the page is stale.

    .venv/bin/python scripts/settings_reference.py           # rewrite docs/settings.md
    .venv/bin/python scripts/settings_reference.py --check   # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = REPO_ROOT / "docs" / "settings.md"
COMPONENTS = (
    ("Every component", "airparadis.settings", "PlatformSettings"),
    ("Model server", "model_server.settings", "ServerSettings"),
    ("Training, tuning, retraining, replay", "training_jobs.settings", "TrainingSettings"),
    ("Kubernetes Jobs (`--on-k8s`)", "training_jobs.launcher", "LauncherSettings"),
    ("Dashboard", "dashboard.settings", "DashboardSettings"),
)


def _on_path() -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def settings_fields(cls: type[BaseSettings]) -> list[tuple[list[str], FieldInfo]]:
    """(variables, field) of every setting of `cls` (`airparadis.settings.settings_fields`)."""
    _on_path()
    from airparadis.settings import settings_fields as fields

    return fields(cls)


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    _on_path()
    return [
        (title, getattr(importlib.import_module(module), name))
        for title, module, name in COMPONENTS
    ]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None or value == []:
        return "unset"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if isinstance(value, dict):
        value = json.dumps(value)
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting of every component, read from the environment (pydantic-settings). This",
        "page is generated from the settings classes by `scripts/settings_reference.py`; a test",
        "fails when it is stale, so it always matches the code. Booleans take `true`/`false`,",
        "lists take comma-separated values.",
        "",
    ]
    for title, cls in settings_classes():
        lines += [f"## {title}", "", f"`{cls.__module__}.{cls.__name__}`", ""]
        lines += ["| variable | default | what it does |", "|---|---|---|"]
        for names_read, field in settings_fields(cls):
            names = " or ".join(f"`{v}`" for v in names_read)
            lines.append(
                f"| {names} | {_cell(_default(field))} | {_cell(field.description or '')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report a stale page")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale; run: .venv/bin/python scripts/settings_reference.py")
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
