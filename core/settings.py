"""The app's settings from the environment, parsed once into a frozen model.

    DATABASE_URL             SQLAlchemy URL of the database (default: data/app.db, SQLite)
    LIKELY_IN_MEMORY_USERS   above this many users, segments run as SQL instead of in memory

A value that is not what it should be is one line naming the variable, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{ROOT / 'data' / 'app.db'}"
DEFAULT_IN_MEMORY_USERS = 5_000_000
MAX_IN_MEMORY_USERS = 10**10


def _whole(value: Any) -> Any:
    text = str(value).strip().replace("_", "")
    if not text.isdigit() or int(text) > MAX_IN_MEMORY_USERS:
        raise ValueError(f"must be a whole number of users from 0 to {MAX_IN_MEMORY_USERS:,}, not {value!r}")
    return int(text)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, min_length=1, max_length=4_000)
    in_memory_users: Annotated[int, BeforeValidator(_whole)] = DEFAULT_IN_MEMORY_USERS


VARIABLES = {"DATABASE_URL": "database_url", "LIKELY_IN_MEMORY_USERS": "in_memory_users"}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings the environment gives (unset or empty variables keep their defaults)."""
    environ = os.environ if environ is None else environ
    given = {field: environ[name] for name, field in VARIABLES.items() if environ.get(name, "").strip()}
    try:
        return Settings.model_validate(given)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        name = next(n for n, f in VARIABLES.items() if f == first["loc"][0])
        reason = (first.get("ctx") or {}).get("error", first["msg"])
        raise UserError(f"the environment variable {name} {reason}") from None
