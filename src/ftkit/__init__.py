"""ftkit: fine-tune pretrained models on your own data, the right way by default.

    run = ftkit.fit(model="minilm-l6", train="train.csv", test="test.csv")
    run.metrics["test"]["accuracy"]; run.predict(["a fine film"])
    run = ftkit.load("runs/my-run")
    ftkit.cv(folds=5, model="minilm-l6", train="train.csv")["test"]["accuracy"]["mean"]
"""
__version__ = "0.1.0"
__all__ = ["fit", "load", "Run", "cv", "seeds", "doctor", "advise", "tune", "rank", "auto", "report", "FitConfig", "FtkitError", "__version__"]


def __getattr__(name: str):
    # Lazy, so `ftkit --help` and config/data errors don't pay for importing torch.
    if name in ("fit", "load", "Run", "cv", "seeds", "doctor", "advise", "rank", "tune", "auto", "report"):
        from ftkit import api
        return getattr(api, name)
    if name == "FitConfig":
        from ftkit.config import FitConfig
        return FitConfig
    if name == "FtkitError":
        from ftkit.errors import FtkitError
        return FtkitError
    raise AttributeError(f"module 'ftkit' has no attribute {name!r}")
