"""The generic layered loader (radiocore/configlayers.py) on its own: layers, flags, rendering."""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from radiocore.configlayers import (
    REDACTED,
    LayeredConfigError,
    add_config_flags,
    config_keys,
    flag_overrides,
    load_layered,
    render_toml,
    setting,
)


@dataclass(frozen=True)
class _Inner:
    """The inner section."""

    ratio: float = setting(0.5, "a ratio")
    names: tuple[str, ...] = setting(("a",), "some names", flag="--inner-name")
    ports: tuple[int, ...] = setting((), "some ports")
    password: str = setting("", "a nested secret", secret=True)


@dataclass(frozen=True)
class _Middle:
    """The middle section."""

    enabled: bool = setting(False, "switch it on")
    inner: _Inner = field(default_factory=_Inner)


@dataclass(frozen=True)
class _Root:
    name: str = setting("x", "a name", choices=("x", "y", "z"))
    token: str = setting("", "a secret", secret=True, redact=lambda text: text[:2] + "***")
    limit: int | None = setting(None, "an optional limit")
    where: Path = setting(Path("/tmp"), "a place", group="places")
    middle: _Middle = field(default_factory=_Middle)


def _load(
    *,
    file: Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
    sources: dict[str, str] | None = None,
) -> _Root:
    return load_layered(
        _Root,
        file=file,
        env=env or {},
        env_prefix="APP_",
        overrides=overrides or {},
        sources=sources,
    )


# -- layers -----------------------------------------------------------------------------------


def test_generic_loader_nests_two_levels(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[middle.inner]\nratio = 2\nports = [1, 2]\n", encoding="utf-8")
    sources: dict[str, str] = {}
    root = _load(
        file=path,
        env={"APP_MIDDLE__INNER__NAMES": "b,c", "APP_MIDDLE__ENABLED": "on", "OTHER": "1"},
        overrides={"middle.inner.ports": "7, 8"},
        sources=sources,
    )
    assert root == _Root(middle=_Middle(enabled=True, inner=_Inner(2.0, ("b", "c"), (7, 8))))
    assert isinstance(root.middle.inner.ratio, float)
    assert sources == {
        "middle.inner.ratio": f"config file {path}",
        "middle.inner.ports": "overrides",
        "middle.inner.names": "environment variable APP_MIDDLE__INNER__NAMES",
        "middle.enabled": "environment variable APP_MIDDLE__ENABLED",
    }


def test_generic_loader_errors_name_key_and_layer(tmp_path: Path) -> None:
    with pytest.raises(LayeredConfigError, match=r"'middle.inner.size' in overrides"):
        _load(overrides={"middle.inner.size": 1})
    with pytest.raises(LayeredConfigError, match=r"unknown .* in environment variable APP_NAME__X"):
        _load(env={"APP_NAME__X": "1"})
    with pytest.raises(LayeredConfigError, match="APP_MIDDLE__INNER__PORTS"):
        _load(env={"APP_MIDDLE__INNER__PORTS": "1,two"})
    path = tmp_path / "c.toml"
    path.write_text("token = 987654\n", encoding="utf-8")
    with pytest.raises(LayeredConfigError, match=f"'token' in config file {path}") as info:
        _load(file=path)
    assert "987654" not in str(info.value)  # repr=False: a secret, never echoed


def test_a_value_from_the_environment_is_never_echoed() -> None:
    # it may be a secret put in the wrong variable
    with pytest.raises(LayeredConfigError, match="APP_MIDDLE__ENABLED") as info:
        _load(env={"APP_MIDDLE__ENABLED": "hunter2-hunter2"})
    assert "hunter2" not in str(info.value)
    with pytest.raises(LayeredConfigError, match="'limit' in overrides must be") as info:
        _load(overrides={"limit": "lots"})
    assert "'lots'" in str(info.value)  # an override is the user's own command line


@pytest.mark.parametrize(
    ("overrides", "env_var", "file_key"),
    [
        ({"token": "s3cret-s3cret"}, "APP_TOKEN", "`token` in the config file"),
        (
            {"middle.inner.password": "s3cret-s3cret"},
            "APP_MIDDLE__INNER__PASSWORD",
            "`password` in the [middle.inner] table of the config file",
        ),
        (
            {"middle": {"inner": {"password": "s3cret-s3cret"}}},
            "APP_MIDDLE__INNER__PASSWORD",
            "`password` in the [middle.inner] table",
        ),
    ],
)
def test_a_secret_is_refused_from_overrides(
    overrides: dict[str, object], env_var: str, file_key: str
) -> None:
    with pytest.raises(LayeredConfigError, match="must not be given on the command line") as info:
        _load(overrides=overrides)
    message = str(info.value)
    assert env_var in message and file_key in message
    assert "s3cret" not in message


def test_a_secret_is_accepted_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('token = "from-the-file"\n[middle.inner]\npassword = "pw"\n')
    assert _load(file=path).token == "from-the-file"
    assert _load(file=path, env={"APP_TOKEN": "from-env"}).token == "from-env"
    assert _load(file=path).middle.inner.password == "pw"


# -- flags ------------------------------------------------------------------------------------


def _parser(**kwargs: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app")
    parser.add_argument("--config")
    add_config_flags(parser, _Root, **kwargs)  # type: ignore[arg-type]
    return parser


def test_flags_turn_into_overrides() -> None:
    args = _parser().parse_args(
        [
            "--config", "c.toml",
            "--name", "y",
            "--limit", "5",
            "--where", "/srv",
            "--middle-enabled",
            "--middle-inner-ratio", "0.25",
            "--inner-name", "b",
            "--middle-inner-ports", "1",
            "--middle-inner-ports", "2",
        ]
    )  # fmt: skip
    overrides = flag_overrides(args, _Root)
    assert overrides == {
        "name": "y",
        "limit": 5,
        "where": Path("/srv"),
        "middle.enabled": True,
        "middle.inner.ratio": 0.25,
        "middle.inner.names": ("b",),
        "middle.inner.ports": (1, 2),
    }
    root = _load(overrides=overrides)
    assert root.middle.inner.ports == (1, 2) and root.limit == 5


def test_a_flag_not_given_overrides_nothing() -> None:
    args = _parser().parse_args(["--no-middle-enabled"])
    assert flag_overrides(args, _Root) == {"middle.enabled": False}
    assert flag_overrides(_parser().parse_args([]), _Root) == {}


def test_the_empty_string_unsets_an_optional_flag() -> None:
    assert flag_overrides(_parser().parse_args(["--limit", ""]), _Root) == {"limit": None}


def test_declared_flag_spelling_replaces_the_derived_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _parser().parse_args(["--inner-name", "b", "--inner-name", "c"])
    assert flag_overrides(args, _Root) == {"middle.inner.names": ("b", "c")}
    with pytest.raises(SystemExit):
        _parser().parse_args(["--middle-inner-names", "b"])
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--limit", "many"], "argument --limit: 'many' is not an integer"),
        (["--middle-inner-ratio", "nan"], "'nan' is not a finite number"),
        (["--name", "w"], "invalid choice: 'w'"),
        (["--token", "s3cret"], "unrecognized arguments: --token"),  # a secret has no flag
        (["--middle-inner-password", "pw"], "unrecognized arguments"),
    ],
)
def test_bad_flags_are_usage_errors(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_every_flag_has_help_with_its_default() -> None:
    text = _parser().format_help()
    for needle in (
        "a ratio (default: 0.5)",
        "some names (repeatable; default: a)",
        "--middle-enabled, --no-middle-enabled",
        "switch it on (default: false)",
        "an optional limit (default: unset)",
        "[middle.inner]",
        "The inner section.",
        "places:",
    ):
        assert needle in " ".join(text.split()), needle


def test_exclude_leaves_a_flag_out(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser(exclude=("middle.enabled",)).parse_args(["--middle-enabled"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_field_without_help_has_no_flag() -> None:
    @dataclass(frozen=True)
    class Undocumented:
        port: int = 1

    with pytest.raises(TypeError, match="'port' declares no help"):
        add_config_flags(argparse.ArgumentParser(), Undocumented)


def test_config_keys() -> None:
    keys = {key.key: key for key in config_keys(_Root)}
    assert list(keys) == [
        "name",
        "token",
        "limit",
        "where",
        "middle.enabled",
        "middle.inner.ratio",
        "middle.inner.names",
        "middle.inner.ports",
        "middle.inner.password",
    ]
    assert keys["middle.inner.password"].secret and not keys["name"].secret
    assert keys["middle.inner.names"].flag == "--inner-name"
    assert keys["middle.inner.ports"].flag == "--middle-inner-ports"
    assert keys["middle.inner.ports"].env_var("APP_") == "APP_MIDDLE__INNER__PORTS"
    assert keys["limit"].default is None and keys["limit"].help == "an optional limit"


# -- rendering --------------------------------------------------------------------------------


def test_rendered_toml_reads_back_with_secrets_redacted(tmp_path: Path) -> None:
    tricky = 'quote " backslash \\ tab \t newline \n del \x7f é'
    env = {"APP_TOKEN": "tok-s3cret", "APP_MIDDLE__INNER__PASSWORD": "pw-s3cret"}
    sources: dict[str, str] = {}
    root = _load(
        env=env,
        overrides={"middle.inner.names": (tricky, "b"), "middle.inner.ratio": 1e-5, "limit": 3},
        sources=sources,
    )
    text = render_toml(root, env_prefix="APP_", sources=sources)
    assert "s3cret" not in text
    assert '# token = "to***"  # secret, from environment variable APP_TOKEN' in text
    assert f'# password = "{REDACTED}"  # secret, from environment variable' in text
    assert "limit = 3  # command line" in text
    assert 'name = "x"  # default' in text
    path = tmp_path / "shown.toml"
    path.write_text(text, encoding="utf-8")
    assert tomllib.loads(text)["middle"]["inner"]["names"] == [tricky, "b"]
    assert _load(file=path, env=env) == root


def test_rendered_toml_marks_unset_values() -> None:
    text = render_toml(_Root(), env_prefix="APP_", with_help=True)
    assert "# an optional limit\n# limit = <unset>\n" in text
    assert '# a secret\n# token = ""  # secret, not set: set APP_TOKEN in the environment' in text
    assert "# The inner section.\n[middle.inner]\n" in text
    assert tomllib.loads(text)["middle"]["inner"] == {"ratio": 0.5, "names": ["a"], "ports": []}
