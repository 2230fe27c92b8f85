"""The v2 Open Inference Protocol over gRPC, with a real gRPC client on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as stubs

from tests.conftest import MODEL_NAME, RunningServer, start_server

TWEETS = ["I love this airline, great crew!", "worst delay ever, my bag is lost"]


def _request(texts: list[str], model: str = MODEL_NAME, datatype: str = "BYTES") -> object:
    contents = pb.InferTensorContents(bytes_contents=[t.encode() for t in texts])
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text", datatype=datatype, shape=[len(texts)], contents=contents
    )
    return pb.ModelInferRequest(model_name=model, inputs=[tensor])


def _stub(server: RunningServer) -> tuple[grpc.Channel, stubs.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(server.grpc_target)
    return channel, stubs.GRPCInferenceServiceStub(channel)


def test_grpc_answers_what_rest_answers(model_server: RunningServer) -> None:
    async def infer() -> tuple[list[str], list[float]]:
        client = InferenceGRPCClient(model_server.grpc_target, timeout=30)
        tensor = InferInput(name="text", shape=[len(TWEETS)], datatype="BYTES", data=TWEETS)
        try:
            response = await client.infer(InferRequest(MODEL_NAME, infer_inputs=[tensor]))
        finally:
            await client.close()
        outputs = {o.name: o for o in response.outputs}
        labels = [b.decode() for b in outputs["label"].data]  # BYTES: bytes, as sent
        return labels, list(outputs["probability"].data)

    labels, probabilities = asyncio.run(infer())
    rest = httpx.post(model_server.predict_url, json={"instances": TWEETS}).json()["predictions"]
    assert labels == [p["label"] for p in rest] == ["positive", "negative"]
    assert probabilities == pytest.approx([p["probability"] for p in rest])


def test_grpc_health_and_metadata(model_server: RunningServer) -> None:
    channel, stub = _stub(model_server)
    with channel:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready


@pytest.mark.parametrize(
    ("request_", "status", "detail"),
    [
        (_request(["x"], datatype="FP32"), grpc.StatusCode.INVALID_ARGUMENT, "BYTES"),
        (_request([" "]), grpc.StatusCode.INVALID_ARGUMENT, "no text"),
        (_request(["a" * 1001]), grpc.StatusCode.INVALID_ARGUMENT, "the limit is 1000"),
        (_request(["x"], model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    ],
)
def test_grpc_bad_input_is_a_status_with_the_reason(
    model_server: RunningServer, request_: object, status: grpc.StatusCode, detail: str
) -> None:
    channel, stub = _stub(model_server)
    with channel, pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(request_, timeout=10)
    assert error.value.code() == status
    assert detail in error.value.details()
    log = model_server.log.read_text()
    assert "Traceback" not in log


def test_grpc_predictions_are_counted_in_metrics(model_server: RunningServer) -> None:
    def positives() -> float:
        text = httpx.get(f"{model_server.url}/metrics").text
        line = next(
            row for row in text.splitlines()
            if row.startswith('airparadis_predictions_total{label="positive"}')
        )  # fmt: skip
        return float(line.split()[-1])

    before = positives()
    channel, stub = _stub(model_server)
    with channel:
        response = stub.ModelInfer(_request(TWEETS[:1] * 3), timeout=10)
    assert response.outputs[0].contents.bytes_contents == [b"positive"] * 3
    assert positives() == before + 3


def test_grpc_predict_needs_credentials_when_predict_is_protected(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    server = start_server(
        tmp_path,
        str(tiny_bundle),
        AIRPARADIS_SERVER_AUTH_REQUIRED="true",
        AIRPARADIS_SERVER_API_KEYS="grpc-key",
        AIRPARADIS_SERVER_OPEN_ROUTES="info",
    )
    try:
        channel, stub = _stub(server)
        with channel:
            with pytest.raises(grpc.RpcError) as error:
                stub.ModelInfer(_request(TWEETS), timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as error:
                stub.ModelInfer(_request(TWEETS), timeout=10, metadata=[("x-api-key", "nope")])
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = stub.ModelInfer(
                _request(TWEETS), timeout=10, metadata=[("x-api-key", "grpc-key")]
            )
            assert answer.outputs[0].contents.bytes_contents == [b"positive", b"negative"]
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready  # probes stay open
    finally:
        server.stop()


def test_grpc_can_be_turned_off(tmp_path: Path, tiny_bundle: Path) -> None:
    server = start_server(tmp_path, str(tiny_bundle), AIRPARADIS_SERVER_GRPC_PORT="0")
    try:
        assert httpx.post(server.predict_url, json={"instances": TWEETS}).status_code == 200
        assert "gRPC v2" not in server.log.read_text()
    finally:
        server.stop()
