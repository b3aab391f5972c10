"""`ftkit serve`: one saved model behind HTTP (FastAPI + uvicorn), micro-batched (app.py)."""
