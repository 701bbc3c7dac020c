"""Reading settings from the environment and the local `.env` file, the way docker compose reads `env_file`.

`.env.example` (copied to `.env` for compose) writes `KEY=value   # comment` and leaves `KEY=` empty for "the
default". django-environ's reader kept the comment in the value (`QUOTE_REFRESH_SECONDS=60   # …` failed to parse,
`SECRET_KEY=change-me   # …` was a different key), and an empty variable was taken as set: `JWT_SIGNING_KEY=`
signed every token with an empty key and `CELERY_BROKER_URL=` sent every task to Celery's default AMQP broker.
Here a comment after whitespace ends an unquoted value and an empty value means "not set"."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import environ

_LINE = re.compile(r"\A\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)\Z")
_INLINE_COMMENT = re.compile(r"\s+#.*\Z")


def env_file_parse(text: str) -> dict[str, str]:
    """KEY=value lines as compose reads them: quotes kept literal inside, `# …` after whitespace dropped."""
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        key, raw = match.group(1), match.group(2)
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = _INLINE_COMMENT.sub("", raw).strip()
        values[key] = value
    return values


def env_file_read(path: Path) -> None:
    """Load `path` (when it exists) into the environment; variables already set win."""
    if not path.is_file():
        return
    for key, value in env_file_parse(path.read_text()).items():
        os.environ.setdefault(key, value)


class _SetVariables(Mapping):
    """os.environ without its empty variables: `KEY=` means the setting's default."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if value == "":
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key for key, value in os.environ.items() if value != "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Env(environ.Env):
    """django-environ's reader where an empty variable is not set."""

    ENVIRON = _SetVariables()
