"""Prometheus metrics of one server: requests by status, latency, batch sizes, inputs.

Each app has its own registry (several apps in one process, as in tests, do not collide). With
several uvicorn workers (`--workers N`) `ftkit serve` sets PROMETHEUS_MULTIPROC_DIR before they
start, each worker writes its values there, and /metrics adds them up over the workers.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    def __init__(self):
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry
        self.requests = Counter("ftkit_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=registry)
        self.latency = Histogram("ftkit_request_seconds", "Time from request to response (POST /predict)",
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_size = Histogram("ftkit_batch_size", "Inputs per model call (micro-batches)",
                                    buckets=BATCH_BUCKETS, registry=registry)
        self.batch_seconds = Histogram("ftkit_batch_seconds", "Time of one model call",
                                       buckets=LATENCY_BUCKETS, registry=registry)
        self.inputs = Counter("ftkit_inputs", "Inputs predicted", registry=registry)

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.inputs.inc(size)

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
