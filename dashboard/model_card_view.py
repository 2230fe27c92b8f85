"""The model cards of the champion and the challenger on the ops page, under their table.

The cards come from MLflow with the versions (`dashboard.registry.read_card`): one summary
line per alias (behavioural checks, calibration, in-domain quality) and the full card, as
written at registration, in a collapsed section per alias.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from airparadis.model_card import IN_DOMAIN, ModelCard
from dashboard import theme


def card_summary(alias: str, card: ModelCard) -> str:
    """One line a person can scan: which version, checks passed, calibration, in-domain."""
    checks = f"behavioural checks {card.behaviour_passed}/{len(card.behaviour)} pass"
    calibration = f"calibration {card.calibration.kind}, threshold {card.calibration.threshold:.2f}"
    domain = card.metrics.get(IN_DOMAIN, {})
    in_domain = (
        f"in-domain macro-F1 {domain['macro_f1']:.3f} on {int(domain.get('n', 0))} feedbacks"
        if "macro_f1" in domain
        else "no held-out feedback yet"
    )
    return f"@{alias} v{card.version} ({card.family}): {checks}; {calibration}; {in_domain}"


class ModelCardView(pn.viewable.Viewer):  # type: ignore[misc]
    """Summary lines and collapsed full cards; `update` replaces what is shown."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._summary = theme.html_pane("", sizing_mode="stretch_width")
        self._cards = pn.Accordion(sizing_mode="stretch_width", css_classes=["ap-model-cards"])
        self._shown: dict[str, ModelCard] = {}

    def update(self, cards: dict[str, ModelCard]) -> None:
        if cards == self._shown:  # an unchanged card is not re-rendered (no flicker)
            return
        self._shown = dict(cards)
        lines = [
            f'<div class="ap-card-summary">{html.escape(card_summary(a, c))}</div>'
            for a, c in cards.items()
        ]
        self._summary.object = "".join(lines)
        self._cards.objects = [
            pn.pane.Markdown(c.to_markdown(), name=f"Model card: @{a} v{c.version}",
                             sizing_mode="stretch_width")
            for a, c in cards.items()
        ]  # fmt: skip
        self._summary.visible = self._cards.visible = bool(cards)

    @property
    def markdown(self) -> dict[str, str]:
        """The card text shown, by accordion title (what a reader opens)."""
        return {pane.name: pane.object for pane in self._cards.objects}

    @property
    def summary(self) -> str:
        return str(self._summary.object)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._summary, self._cards, sizing_mode="stretch_width")
