"""A closed-loop load client for one protocol, run as its own process by `benchmarks.grpc_rest`.

    python -m benchmarks.protocol_load rest|grpc 127.0.0.1:PORT MODEL TWEET CONCURRENCY SECONDS

It keeps CONCURRENCY requests in flight for SECONDS, each carrying one tweet, and prints one
JSON line: requests answered, failures, req/s, p50 and p99 in ms. Both protocols are driven
the same way, from one asyncio loop with the request encoded once: REST as raw HTTP/1.1
keep-alive connections (one per in-flight request, as wrk does), gRPC over one HTTP/2 channel
(as gRPC clients do) with the protobuf message serialized once and the answer's status checked.
Nothing here targets any address but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"


def rest_request(target: str, model: str, tweet: str) -> bytes:
    body = json.dumps({"instances": [tweet]}).encode()
    head = (
        f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {target}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def grpc_request(model: str, tweet: str) -> bytes:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[tweet.encode()]),
    )
    return bytes(pb.ModelInferRequest(model_name=model, inputs=[tensor]).SerializeToString())


async def _rest_worker(
    target: str, request: bytes, until: float, latencies: list[float], failures: list[int]
) -> None:
    host, port = target.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(1)
                continue
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _run(protocol: str, target: str, model: str, tweet: str, concurrency: int,
               seconds: float) -> dict[str, float]:  # fmt: skip
    latencies: list[float] = []
    failures: list[int] = []
    channel = None
    if protocol == "grpc":
        import grpc

        channel = grpc.aio.insecure_channel(target)
        call = channel.unary_unary(INFER_METHOD)  # bytes in, bytes out: no per-call encoding
        message = grpc_request(model, tweet)

        async def worker(until: float) -> None:
            while time.perf_counter() < until:
                started = time.perf_counter()
                try:
                    await call(message, timeout=30)
                except grpc.RpcError:
                    failures.append(1)
                    continue
                latencies.append(time.perf_counter() - started)

        make: Callable[[float], Awaitable[None]] = worker
    else:
        request = rest_request(target, model, tweet)

        def make(until: float) -> Awaitable[None]:
            return _rest_worker(target, request, until, latencies, failures)

    warm_until = time.perf_counter() + 0.5
    await asyncio.gather(*(make(warm_until) for _ in range(concurrency)))
    latencies.clear()
    failures.clear()
    started = time.perf_counter()
    await asyncio.gather(*(make(started + seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if channel is not None:
        await channel.close()
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    return {
        "requests": len(latencies),
        "failures": len(failures),
        "rps": len(latencies) / elapsed,
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
    }


def main() -> None:
    protocol, target, model, tweet, concurrency, seconds = sys.argv[1:7]
    if protocol not in ("rest", "grpc") or not target.startswith("127.0.0.1:"):
        raise SystemExit("usage: protocol_load rest|grpc 127.0.0.1:PORT MODEL TWEET N SECONDS")
    result = asyncio.run(_run(protocol, target, model, tweet, int(concurrency), float(seconds)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
