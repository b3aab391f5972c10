"""How the CLI's commands are declared: the fit flags generated from the config's fields (their
description is the help), and `command`, which registers a command whose help is its docstring as
one paragraph. cli.py holds only the commands."""
from __future__ import annotations

import copy
import functools
import inspect
import typing
from pathlib import Path
from typing import Literal, Union

import typer
from typer.models import ParameterInfo

from ftkit import cli_output as show
from ftkit.config import KEYWORDS, field_info

CONFIG_ARG = typer.Argument(None, help="YAML config file (flags override it)")
SET_OPT = typer.Option(None, "--set", help="dotted.key=value override (repeatable)")
QUIET_OPT = typer.Option(False, "--quiet", help="no progress bars or info logs")
OVERWRITE_OPT = typer.Option(False, help="replace finished runs in --out")


def fit_flag(name: str, help: str | None = None) -> inspect.Parameter:
    """`--NAME` for the config field KEYWORDS[NAME]: its type, and its description as help."""
    info = field_info(KEYWORDS[name])
    kind = info.annotation
    if typing.get_origin(kind) is Union:  # Optional[X] -> X
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if typing.get_origin(kind) is Literal:
        kind = type(typing.get_args(kind)[0])
    flag = "--" + name.replace("_", "-")
    if kind is bool:
        option = typer.Option(False, flag, help=help or info.description)
    else:  # None: not given, the config file's value (or the default) stays
        shown = "" if info.default is None else f" [{info.default}]"
        option, kind = typer.Option(None, flag, help=help or info.description + shown), kind | None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)


def command(app: typer.Typer, name: str | None = None, fit_flags: str = "", **helps: str):
    """Register a command; its help is its docstring as one paragraph. FIT_FLAGS (space-separated)
    names the fit flags it takes besides the YAML config and --set: they reach it as `args`, the
    arguments `api.<name>(**args, ...)` takes (config, overrides and the flags given). HELPS:
    the help of a fit flag where a command reads it differently."""
    def register(func):
        hints = typing.get_type_hints(func)
        own = [p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(func).parameters.values() if p.name != "args"]
        flags = fit_flags.split()
        shared = [] if not flags else (
            [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=CONFIG_ARG, annotation=Path | None)]
            + [fit_flag(n, helps.get(n)) for n in flags]
            + [inspect.Parameter("set_", inspect.Parameter.KEYWORD_ONLY, default=SET_OPT,
                                 annotation=list[str] | None)])

        @functools.wraps(func)
        def run(**kwargs):
            if flags:
                config, sets = kwargs.pop("config"), kwargs.pop("set_")
                given = {n: v for n in flags if (v := kwargs.pop(n)) is not None and v is not False}
                kwargs["args"] = {"config": str(config) if config else None, "overrides": sets or [], **given}
            if "quiet" in kwargs:
                show.setup_logging(kwargs["quiet"])
            return func(**kwargs)

        params = [p.replace(default=_literal(p.default)) for p in shared[:-1] + own + shared[-1:]]
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        return app.command(name, help=_literal(" ".join((func.__doc__ or "").split())))(run)
    return register


def _literal(help):
    """Help text (or an option's, copied) with its [brackets] shown as typed, not read as rich markup."""
    if isinstance(help, str):
        return help.replace("[", "\\[")
    if isinstance(help, ParameterInfo) and help.help:
        help = copy.copy(help)
        help.help = _literal(help.help)
    return help
