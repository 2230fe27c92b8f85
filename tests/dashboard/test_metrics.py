"""Reading the server's /metrics: counters, and percentiles estimated from histogram buckets."""

from __future__ import annotations

import math

import httpx
import pytest

from dashboard.metrics import histogram_quantile, parse_metrics
from tests.conftest import MODEL_NAME, RunningServer

INF = math.inf


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 10 requests: 5 under 10 ms, 3 between 10 and 50 ms, 2 between 50 and 100 ms.
    buckets = [(0.01, 5.0), (0.05, 8.0), (0.1, 10.0), (INF, 10.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.2, buckets) == pytest.approx(0.004)
    assert histogram_quantile(0.65, buckets) == pytest.approx(0.01 + 0.04 * 1.5 / 3)
    assert histogram_quantile(0.9, buckets) == pytest.approx(0.075)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.05 + 0.05 * 1.9 / 2)


def test_quantile_edge_cases() -> None:
    assert math.isnan(histogram_quantile(0.5, []))
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, [(0.1, 3.0), (0.2, 3.0)]))  # no +Inf bucket
    # Past the last finite bound: that bound is the best estimate.
    assert histogram_quantile(0.99, [(0.1, 1.0), (INF, 10.0)]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="quantile"):
        histogram_quantile(1.5, [(INF, 1.0)])


def test_parse_keeps_one_model_and_sums_counters() -> None:
    text = "\n".join(
        [
            "# TYPE request_predict_seconds histogram",
            'request_predict_seconds_bucket{le="0.01",model_name="a"} 2.0',
            'request_predict_seconds_bucket{le="+Inf",model_name="a"} 4.0',
            'request_predict_seconds_count{model_name="a"} 4.0',
            'request_predict_seconds_sum{model_name="a"} 0.1',
            'request_predict_seconds_bucket{le="0.01",model_name="b"} 9.0',
            'request_predict_seconds_bucket{le="+Inf",model_name="b"} 9.0',
            "# TYPE airparadis_predictions_total counter",
            'airparadis_predictions_total{label="positive"} 3.0',
            'airparadis_predictions_total{label="negative"} 1.0',
            "# TYPE airparadis_feedback_total counter",
            'airparadis_feedback_total{verdict="wrong"} 2.0',
            "# TYPE airparadis_alerts_total counter",
            "airparadis_alerts_total 1.0",
            "# TYPE airparadis_misprediction_rate gauge",
            "airparadis_misprediction_rate 0.35",
            "",
        ]
    )
    metrics = parse_metrics(text, "a")
    assert metrics.predictions_by_label == {"positive": 3.0, "negative": 1.0}
    assert metrics.feedback_by_verdict == {"wrong": 2.0}
    assert metrics.alerts_total == 1.0
    assert metrics.misprediction_rate == pytest.approx(0.35)
    assert metrics.latency["predict"].buckets == [(0.01, 2.0), (INF, 4.0)]
    assert metrics.latency["predict"].count == 4.0
    assert metrics.percentiles()["predict"][0.5] == pytest.approx(0.01)


def test_parse_the_real_server_output(model_server: RunningServer) -> None:
    httpx.post(model_server.predict_url, json={"instances": ["great flight", "awful, lost bag"]})
    metrics = parse_metrics(httpx.get(f"{model_server.url}/metrics").text, MODEL_NAME)
    assert sum(metrics.predictions_by_label.values()) >= 2
    assert {"preprocess", "predict", "postprocess"} <= set(metrics.latency)
    predict = metrics.latency["predict"]
    assert predict.count >= 1 and math.isinf(predict.buckets[-1][0])
    p = metrics.percentiles()["predict"]
    assert 0 < p[0.5] <= p[0.9] <= p[0.99]


def test_misprediction_rate_is_nan_when_absent_or_not_yet_counted() -> None:
    assert math.isnan(parse_metrics("").misprediction_rate)  # an older server: no gauge
    text = "# TYPE airparadis_misprediction_rate gauge\nairparadis_misprediction_rate NaN\n"
    assert math.isnan(parse_metrics(text).misprediction_rate)


def test_misprediction_rate_of_the_real_server(rules_server: RunningServer) -> None:
    def verdict(verdict: str) -> float:
        body = {"tweet": "late again", "predicted_label": "positive", "verdict": verdict}
        assert httpx.post(f"{rules_server.url}/v1/feedback", json=body).status_code == 201
        text = httpx.get(f"{rules_server.url}/metrics").text
        return parse_metrics(text, MODEL_NAME).misprediction_rate

    # That server's rule counts from 4 verdicts in its window.
    assert all(math.isnan(verdict(v)) for v in ("wrong", "correct", "wrong"))
    assert verdict("wrong") == pytest.approx(0.75)
