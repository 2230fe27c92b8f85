"""The Panel app: a user page to classify tweets and give feedback."""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from dashboard.client import ModelServerClient, Prediction, RequestRejected, ServerUnavailable
from dashboard.settings import DashboardSettings


class UserPage(pn.viewable.Viewer):  # type: ignore[misc]
    """State of one browser session: the tweet typed, its prediction, the feedback sent."""

    text = param.String(default="", doc="The tweet to classify.")
    prediction = param.Parameter(default=None, doc="Last Prediction, or None.")
    message = param.String(default="", doc="Inline message: confirmation or problem.")
    banner = param.String(default="", doc="Server problem shown on top; empty when healthy.")

    def __init__(self, client: ModelServerClient, max_chars: int, **params: Any) -> None:
        super().__init__(**params)
        self.client = client
        self.max_chars = max_chars

    def classify(self, _event: object = None) -> None:
        text = self.text.strip()
        self.prediction = None
        if not text:
            self.message = "Type a tweet first."
            return
        if len(text) > self.max_chars:
            self.message = f"That tweet is {len(text)} characters; the limit is {self.max_chars}."
            return
        try:
            self.prediction = self.client.predict([text])[0]
        except ServerUnavailable as exc:
            self.banner = f"The model server is unavailable: {exc}"
            self.message = ""
            return
        except RequestRejected as exc:
            self.message = f"The server refused this tweet: {exc}"
            return
        self.banner = ""
        self.message = ""

    def send_feedback(self, verdict: str) -> None:
        prediction: Prediction | None = self.prediction
        if prediction is None:
            self.message = "Classify a tweet before sending feedback."
            return
        try:
            stored = self.client.feedback(prediction, verdict=verdict)
        except (ServerUnavailable, RequestRejected) as exc:
            self.message = f"Feedback not stored: {exc}"
            return
        self.message = f"Thanks, feedback stored (id {stored['id']})."

    @param.depends("prediction")
    def _result(self) -> pn.viewable.Viewable:
        p: Prediction | None = self.prediction
        if p is None:
            return pn.pane.Markdown("")
        return pn.Column(
            pn.pane.Markdown(
                f"### {p.label.capitalize()} ({p.confidence:.0%} confident)\n"
                f"Model version: `{p.model_version or 'local'}`"
            ),
            pn.indicators.Progress(value=round(100 * p.confidence), max=100, width=300),
        )

    def __panel__(self) -> pn.viewable.Viewable:
        text_input = pn.widgets.TextAreaInput.from_param(
            self.param.text, name="Tweet", placeholder="Type or paste a tweet", height=100
        )
        classify = pn.widgets.Button(name="Classify", button_type="primary")
        classify.on_click(self.classify)
        correct = pn.widgets.Button(name="Correct", button_type="success")
        correct.on_click(lambda _e: self.send_feedback("correct"))
        wrong = pn.widgets.Button(name="Wrong", button_type="danger")
        wrong.on_click(lambda _e: self.send_feedback("wrong"))
        return pn.Column(
            pn.pane.Alert.from_param(self.param.banner, alert_type="danger", visible=self.param.banner.rx.bool()),
            text_input,
            classify,
            self._result,
            pn.Row(correct, wrong),
            pn.pane.Markdown(self.param.message),
        )


def create_app(settings: DashboardSettings) -> pn.template.BaseTemplate:
    page = UserPage(ModelServerClient(settings), settings.max_tweet_chars)
    return pn.template.FastListTemplate(
        title="Air Paradis – Sentiment Analysis", main=[page]
    )


def serve(settings: DashboardSettings) -> None:
    pn.serve(
        {"/": lambda: create_app(settings)},
        address=settings.host,
        port=settings.port,
        show=False,
        title="Air Paradis – Sentiment Analysis",
        websocket_origin=[f"{settings.host}:{settings.port}", f"localhost:{settings.port}"],
    )
