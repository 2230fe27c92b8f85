"""The ops page's charts, built from the frames of `dashboard.ops_data` and `ops_health`."""

from __future__ import annotations

from typing import Any

import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd

from dashboard.ops_health import reliability_frame
from dashboard.ops_text import WRONG_RATE, tick_labels
from dashboard.theme import BLUE, GREEN, GREY, RED

PLOT_OPTS: dict[str, Any] = {
    "responsive": True,
    "height": 250,
    "fontscale": 0.95,
    "toolbar": None,
    "tools": ["hover"],
}
LATENCY_COLORS = ["#54aeff", "#0969da", "#0a3069"]


def _sparse_ticks(labels: dict[str, str]) -> Any:
    """A Bokeh hook that blanks the time labels `tick_labels` leaves out, so that a 7-day
    window shows one label a day instead of one per bin."""

    def hook(plot: Any, _element: Any) -> None:
        plot.state.xaxis.major_label_overrides = labels

    return hook


def feedback_plots(frame: pd.DataFrame, window_seconds: int) -> tuple[Any, Any]:
    """Feedback received per bin (correct and wrong, stacked) and the wrong-prediction rate."""
    hooks = [_sparse_ticks(tick_labels(frame, window_seconds))]
    volume = frame.hvplot.bar(
        x="bin", y=["correct", "wrong"], stacked=True, color=[GREEN, RED], xlabel="",
        ylabel="verdicts", title="Feedback received", legend="top_left", **PLOT_OPTS,
    ).opts(hooks=hooks)  # fmt: skip
    rate = frame.hvplot.line(
        x="bin", y="wrong_rate", color=RED, xlabel="", ylabel="% of verdicts wrong",
        ylim=(0, 105), title=WRONG_RATE, **PLOT_OPTS,
    ) * frame.hvplot.scatter(
        x="bin", y="wrong_rate", color=RED, size=40, **PLOT_OPTS
    )  # fmt: skip
    return volume, rate.opts(hooks=hooks)


def labels_plot(frame: pd.DataFrame) -> Any:
    """Predictions by label since the server started, in the labels' colours."""
    colors = {"negative": RED, "positive": GREEN}
    frame = frame.assign(color=[colors.get(label, GREY) for label in frame["label"]])
    return frame.hvplot.bar(
        x="label", y="predictions", color="color", xlabel="", ylabel="predictions",
        title="Predictions by label, since the server started", hover_cols=["predictions"],
        **PLOT_OPTS,
    )  # fmt: skip


def latency_plot(frame: pd.DataFrame) -> Any:
    """Percentiles by stage; those inside a first bucket (shown as "< x ms") are left out."""
    long = frame.melt(
        id_vars="stage", value_vars=["p50", "p90", "p99"], var_name="quantile", value_name="ms"
    ).dropna()
    long["ms"] = long["ms"].astype(float)
    return long.hvplot.bar(
        x="stage", y="ms", by="quantile", xlabel="", ylabel="milliseconds",
        title="Latency percentiles by stage", color=LATENCY_COLORS, legend="top_right",
        **PLOT_OPTS,
    )  # fmt: skip


def drift_plot(frame: pd.DataFrame) -> Any:
    """The P(positive) distribution, live against training; the legend sits above the plot,
    where it hides no bar."""
    return frame.hvplot.bar(
        x="p_positive", y="share", by="source", xlabel="P(positive)", ylabel="% of tweets",
        title="P(positive) distribution: live vs training", color=[BLUE, GREY],
        legend="top", rot=45, **PLOT_OPTS,
    ).opts(multi_level=False)  # fmt: skip


def reliability_plot(calibration: dict[str, Any] | None) -> Any:
    """The calibrated reliability curve against the diagonal."""
    curve = reliability_frame(calibration)
    diagonal = pd.DataFrame({"p_mean": [0.0, 1.0], "frac_positive": [0.0, 1.0]})
    plot = diagonal.hvplot.line(
        x="p_mean", y="frac_positive", color=GREY, line_dash="dashed", label="perfect",
        **PLOT_OPTS,
    )  # fmt: skip
    if not curve.empty:
        plot = plot * curve.hvplot.line(
            x="p_mean", y="frac_positive", color=BLUE, label="calibrated", **PLOT_OPTS
        ) * curve.hvplot.scatter(
            x="p_mean", y="frac_positive", color=BLUE, size=40, hover_cols=["count"],
            **PLOT_OPTS,
        )  # fmt: skip
    return plot.opts(
        title="Reliability on held-out feedback", xlabel="predicted P(positive)",
        ylabel="observed positive share", xlim=(0, 1), ylim=(0, 1), legend_position="top_left",
    )  # fmt: skip
