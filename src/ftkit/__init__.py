"""ftkit: fine-tune pretrained models on your own data, the right way by default.

    run = ftkit.fit(model="minilm-l6", train="train.csv", test="test.csv")
    run.metrics["test"]["accuracy"]; run.predict(["a fine film"])
    run = ftkit.load("runs/my-run")
    ftkit.cv(folds=5, model="minilm-l6", train="train.csv")["test"]["accuracy"]["mean"]
"""
from ftkit.version import __version__
# The api functions reachable as ftkit.<name> (`ftkit.models`, `.tasks`, `.strategies`, `.datasets` and
# `.predict` are subpackages/modules: their api functions are ftkit.api.models(), ...).
API = ("fit", "load", "Run", "Model", "cv", "seeds", "compare", "doctor", "advise", "rank", "tune", "auto", "report",
       "export", "evaluate", "eval", "predict_file", "import_checkpoint", "env", "serve", "serve_app", "check", "studio")
__all__ = [
    "FitConfig",
    "FtkitError",
    "Model",
    "Run",
    "__version__",
    "advise",
    "auto",
    "check",
    "compare",
    "cv",
    "doctor",
    "env",
    "eval",
    "evaluate",
    "export",
    "fit",
    "import_checkpoint",
    "load",
    "predict_file",
    "rank",
    "report",
    "seeds",
    "serve",
    "serve_app",
    "studio",
    "tune",
]


def __getattr__(name: str):
    # Lazy, so `ftkit --help` and config/data errors don't pay for importing torch.
    if name in API:
        from ftkit import api
        return getattr(api, name)
    if name == "FitConfig":
        from ftkit.config import FitConfig
        return FitConfig
    if name == "FtkitError":
        from ftkit.errors import FtkitError
        return FtkitError
    raise AttributeError(f"module 'ftkit' has no attribute {name!r}")
