"""The ops page's charts, built from the frames of `dashboard.ops_data` and `ops_health`."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd

from dashboard.ops_health import reliability_frame
from dashboard.ops_text import WRONG_RATE
from dashboard.theme import BLUE, GREEN, GREY, RED

PLOT_OPTS: dict[str, Any] = {
    "responsive": True,
    "height": 250,
    "fontscale": 0.95,
    "toolbar": None,
    "tools": ["hover"],
}
LATENCY_COLORS = ["#54aeff", "#0969da", "#0a3069"]


def feedback_plots(frame: pd.DataFrame) -> tuple[Any, Any]:
    """Verdicts received per bin and the wrong-prediction rate, on a time axis: Bokeh picks
    readable ticks for any window (hours over a day, days over a week), where one label per
    bin crammed 28 of them on a 7-day axis. The volume draws all verdicts in green with the
    wrong ones over them in red, so the bars read as stacked."""
    starts = pd.to_datetime(frame["start"], utc=True).dt.tz_localize(None)
    step = starts.iloc[1] - starts.iloc[0] if len(starts) > 1 else pd.Timedelta(seconds=60)
    edges = [*starts, starts.iloc[-1] + step]
    opts: dict[str, Any] = {"line_color": "white", "tools": ["hover"]}
    total = hv.Histogram((edges, frame["total"]), kdims="time", vdims="verdicts", label="correct")
    wrong = hv.Histogram((edges, frame["wrong"]), kdims="time", vdims="verdicts", label="wrong")
    volume = (total.opts(color=GREEN, **opts) * wrong.opts(color=RED, **opts)).opts(
        title="Feedback received", xlabel="", ylabel="verdicts", legend_position="top_left",
        responsive=True, height=PLOT_OPTS["height"], fontscale=PLOT_OPTS["fontscale"],
        toolbar=None,
    )  # fmt: skip
    points = frame.drop(columns="start").assign(time=(starts + step / 2).to_numpy())
    rate = points.hvplot.line(
        x="time", y="wrong_rate", color=RED, xlabel="", ylabel="% of verdicts wrong",
        ylim=(0, 105), title=WRONG_RATE, **PLOT_OPTS,
    ) * points.hvplot.scatter(
        x="time", y="wrong_rate", color=RED, size=40, hover_cols=["wrong", "total"], **PLOT_OPTS
    )  # fmt: skip
    return volume, rate.opts(xlim=(edges[0], edges[-1]))  # the window, as the volume


def labels_plot(frame: pd.DataFrame) -> Any:
    """Predictions by label since the server started, in the labels' colours."""
    colors = {"negative": RED, "positive": GREEN}
    frame = frame.assign(color=[colors.get(label, GREY) for label in frame["label"]])
    return frame.hvplot.bar(
        x="label", y="predictions", color="color", xlabel="", ylabel="predictions",
        title="Predictions by label", hover_cols=["predictions"],
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
        title="P(positive): live vs training", color=[BLUE, GREY],
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
        title="Held-out reliability", xlabel="predicted P(positive)",
        ylabel="observed positive share", xlim=(0, 1), ylim=(0, 1), legend_position="top_left",
    )  # fmt: skip
