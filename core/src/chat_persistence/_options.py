"""Configuration to options: a mapping (or a URL's query strings) turned into a
backend's attrs options class by cattrs, naming any unknown, missing or mistyped
option and the nearest valid one."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import attrs

from ._errors import ConfigError
from ._hooks import Backend
from ._redact import redact

if TYPE_CHECKING:
    import cattrs


def nearest(word: str, choices: list[str]) -> str | None:
    """The choice closest to ``word`` (a likely typo of it), or None."""
    import difflib  # only ever on an error path

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_option(
    backend: str, key: str, valid: list[str], *, what: str = "option"
) -> ConfigError:
    """The error for an option (or URL parameter) ``key`` that ``backend`` does not
    take: it names the valid ones and the nearest."""
    close = nearest(key, valid)
    hint = f"; did you mean {close!r}?" if close else ""
    return ConfigError(
        f"unknown {what} {key!r} for backend {backend!r}; "
        f"valid {what}s: {', '.join(valid) or '(none)'}{hint}",
        backend=backend,
        option=key,
        valid=valid,
    )


def structure_options(backend: Backend, raw: Mapping[str, Any]) -> Any:
    """Turn a configuration mapping into the backend's options class, naming any
    unknown, missing or mistyped option."""
    fields = attrs.fields(backend.options)
    valid = [f.name for f in fields]
    for key in raw:
        if key not in valid:
            raise unknown_option(backend.name, str(key), valid)
    for f in fields:
        if f.default is attrs.NOTHING and f.name not in raw:
            raise ConfigError(
                f"missing option {f.name!r} for backend {backend.name!r}; "
                f"valid options: {', '.join(valid)}",
                backend=backend.name,
                option=f.name,
                valid=valid,
            )
    if not raw:
        # Every option has a default (checked above): nothing to convert, so the
        # common ``create_adapter("memory://")`` never loads cattrs.
        return backend.options()
    return _convert(backend, raw, valid)


def _convert(backend: Backend, raw: Mapping[str, Any], valid: list[str]) -> Any:
    import cattrs

    try:
        return _options_converter().structure(dict(raw), backend.options)
    except Exception as err:
        if isinstance(err, cattrs.ClassValidationError):
            # An options class's own validators already name the option: keep theirs.
            own = [e for e in err.exceptions if isinstance(e, ConfigError)]
            if own:
                raise own[0] from None
        option: str | None = None
        if isinstance(err, cattrs.ClassValidationError):
            details = "; ".join(cattrs.transform_error(err, path="options"))
            noted = err.group_exceptions()[0]
            if noted:
                option = noted[0][1].name
        else:
            details = f"{type(err).__name__}: {err}"
        raise ConfigError(
            # A mistyped value may be a connection string.
            f"invalid options for backend {backend.name!r}: {redact(details)}",
            backend=backend.name,
            option=option,
            valid=valid,
        ) from err


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _structure_bool(value: object, _: object) -> bool:
    # bool("false") is True: URL query values are strings, so read them as words.
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a bool (true/false), got {value!r}")


def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str):
        return int(value.strip())  # URL query values are strings
    raise TypeError(f"expected an int, got {type(value).__name__} {value!r}")


def _structure_float(value: object, _: object) -> float:
    if type(value) in (int, float):
        return float(cast(float, value))
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _structure_str(value: object, _: object) -> str:
    # cattrs would turn anything into a string (str(5), str({...})): a typo'd value
    # must be an error, not a silently wrong option.
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")


@functools.cache
def _options_converter() -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    return conv
