"""The predictor's protocol codecs: tweets out of v1 and v2 (Open Inference Protocol)
requests, one validation whichever protocol carried them, predictions back in the request's
protocol, and `:explain`'s token contributions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import orjson
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput
from kserve.utils.utils import generate_uuid

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier
from airparadis.text import clean_tweet, is_blank

Payload: TypeAlias = dict[str, Any] | InferRequest | bytes


def decode(payload: Payload, max_instances: int, max_tweet_chars: int) -> list[str]:
    """The tweets of a v1 body (``{"instances": [...]}``) or a v2 request, validated."""
    if isinstance(payload, bytes | bytearray):
        # kserve hands over the raw body when the client sent no JSON content type; it
        # parses JSON ones with orjson, and so does this: NaN or a lone surrogate is
        # refused alike on every route.
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if isinstance(payload, InferRequest):
        return check_texts(v2_tweets(payload), max_instances, max_tweet_chars)
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput("expected a JSON object with an 'instances' list")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput("'instances' must be a list of tweets")
    return check_texts(instances, max_instances, max_tweet_chars)


def check_texts(texts: Sequence[object], max_instances: int, max_tweet_chars: int) -> list[str]:
    """The one validation of tweets, whichever protocol carried them."""
    if len(texts) == 0:
        raise InvalidInput("'instances' must hold at least one tweet")
    if len(texts) > max_instances:
        raise InvalidInput(f"too many instances: {len(texts)} > {max_instances} per request")
    out: list[str] = []
    for index, text in enumerate(texts):
        if isinstance(text, dict):
            text = text.get("text")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"instance {index} is not valid UTF-8") from exc
        if not isinstance(text, str):
            raise InvalidInput(
                f"instance {index} must be a string (or an object with a 'text' string)"
            )
        if len(text) > max_tweet_chars:
            raise InvalidInput(
                f"instance {index} is {len(text)} characters; the limit is {max_tweet_chars}"
            )
        if not is_valid_unicode(text):
            raise InvalidInput(f"instance {index} is not valid Unicode (a lone surrogate)")
        if is_blank(text):
            raise InvalidInput(f"instance {index} has no text: it is empty or only spaces")
        out.append(text)
    return out


def v2_tweets(request: InferRequest) -> list[object]:
    """The tweets of a v2 request: one BYTES input whose shape agrees with its data."""
    if len(request.inputs) != 1 or request.inputs[0].datatype != "BYTES":
        raise InvalidInput("v2 requests need exactly one BYTES input of tweets")
    tensor = request.inputs[0]
    data = list(tensor.data) if tensor.data is not None else []
    shape = list(tensor.shape or [])
    if not shape or any(not isinstance(d, int) or d < 0 for d in shape):
        raise InvalidInput(f"input {tensor.name!r}: shape {shape} must be non-negative sizes")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInput(f"input {tensor.name!r}: shape {shape} must be [n] or [n, 1]")
    if shape[0] != len(data):
        raise InvalidInput(
            f"input {tensor.name!r}: shape {shape} does not match its {len(data)} elements"
        )
    if request.id is not None and not is_valid_unicode(str(request.id)):
        raise InvalidInput("request id is not valid Unicode (a lone surrogate)")
    return data


def is_valid_unicode(text: str) -> bool:
    """False for a string holding a lone UTF-16 surrogate, which no UTF-8 encoder takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode(
    payload: Payload,
    model_name: str,
    labels: list[str],
    proba: Sequence[float],
    version: str | None,
) -> dict[str, Any] | InferResponse:
    """Labels and P(positive) in the protocol of the request they answer."""
    if isinstance(payload, InferRequest):
        return InferResponse(
            response_id=payload.id or generate_uuid(),
            model_name=model_name,
            model_version=version,
            infer_outputs=[
                InferOutput(name="label", shape=[len(labels)], datatype="BYTES", data=labels),
                InferOutput(
                    name="probability", shape=[len(labels)], datatype="FP64", data=list(proba)
                ),
            ],
        )
    return {
        "predictions": [
            {"label": label, "probability": p, "model_version": version}
            for label, p in zip(labels, proba, strict=True)
        ]
    }


def explain_tweet(classifier: SentimentClassifier, text: str, max_tokens: int) -> dict[str, Any]:
    """Token contributions: exact logit parts for linear models, occlusion for the rest.

    Occlusion drops one token at a time and costs one batched call over at most
    `max_tokens` + 1 variants, whatever the family.
    """
    p_full = float(classifier.predict_proba([text])[0])
    exact = getattr(classifier, "explain", None)
    result = exact(text) if exact is not None else None
    bias: float | None = None
    if result is not None:  # calibrated models give slope-scaled parts (airparadis.calibration)
        tokens, parts = result
        method, unit = "exact-linear", "logit"
        clipped = min(max(p_full, 1e-12), 1 - 1e-12)
        bias = math.log(clipped / (1 - clipped)) - sum(parts)  # intercept(s): parts + bias = logit
    else:
        tokens = clean_tweet(text).split()[:max_tokens]
        variants = [" ".join(tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))]
        proba = classifier.predict_proba(variants) if variants else np.empty(0)
        parts = [p_full - float(p) for p in proba]
        method, unit = "occlusion", "probability"
    return {
        "label": LABELS[1] if p_full >= classifier.info.threshold else LABELS[0],
        "probability": p_full,
        "method": method,
        "unit": unit,
        "tokens": [{"token": t, "contribution": c} for t, c in zip(tokens, parts, strict=True)],
        **({"bias": bias} if bias is not None else {}),
    }
