"""The peer of bench/serve.py: the FastAPI wrapper people write first around a transformers
`pipeline`, called once per request (no batching across requests).

    MODEL_DIR=runs/x/model .venv/bin/uvicorn bench.serve_peer:app --port 8100
"""
import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

app = FastAPI()
classifier = pipeline("text-classification", model=os.environ["MODEL_DIR"], top_k=None, device="cpu")


class Request(BaseModel):
    inputs: list[str]


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(request: Request) -> dict:
    out = []
    for scores in classifier(request.inputs, truncation=True):
        best = max(scores, key=lambda s: s["score"])
        out.append({"label": best["label"], "score": best["score"],
                    "probabilities": {s["label"]: s["score"] for s in scores}})
    return {"predictions": out}
