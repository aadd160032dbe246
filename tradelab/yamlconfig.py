"""YAML configuration files validated by pydantic models (``configs/*.yaml``).

Every config of the project loads through here, so a bad file always fails the same way: one
error naming the file, and under it each offending key with what is expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tradelab.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], raw: object, origin: str, what: str) -> M:
    """Validate an already-parsed mapping; ``what`` names the kind of config in errors."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError(f"{origin}: invalid {what}:\n" + "\n".join(lines)) from None


def read_yaml(path: str | Path, what: str) -> object:
    """The parsed content of a YAML file; a missing file or bad YAML is a ConfigError naming
    it (``what`` says what the file is, e.g. "accounts file")."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_model(model: type[M], path: str | Path, what: str) -> M:
    """Read a YAML file and validate it; a missing file or bad YAML is named as such."""
    return parse_model(model, read_yaml(path, what), str(path), what)
