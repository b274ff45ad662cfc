"""`make install`'s uv path (install_env.py): pip's configuration reaches uv as flags, so that uv sees the same
indexes, local wheels and constraints as pip would."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import install_env  # noqa: E402

LISTING = """global.cert='/etc/ssl/certs/ca.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'
global.find-links='/opt/wheels'
global.timeout='60'
:env:.find-links='/srv/wheels'
"""


def test_pip_settings_keep_what_uv_needs_and_let_the_environment_win() -> None:
    settings = install_env.pip_settings(LISTING)
    assert settings == {"cert": ["/etc/ssl/certs/ca.crt"], "constraint": ["/etc/xdg/pip/constraints.txt"],
                        "extra-index-url": ["file:///opt/a/simple", "file:///opt/b/simple"],
                        "find-links": ["/srv/wheels"]}


def test_uv_command_passes_every_index_link_and_constraint() -> None:
    command = install_env.uv_command(Path("/v"), ".[dev]", install_env.pip_settings(LISTING))
    assert command[:4] == ["/v/bin/uv", "pip", "install", "--python"]
    pairs = list(zip(command, command[1:]))
    assert ("--extra-index-url", "file:///opt/a/simple") in pairs
    assert ("--extra-index-url", "file:///opt/b/simple") in pairs
    assert ("--find-links", "/srv/wheels") in pairs and ("--constraint", "/etc/xdg/pip/constraints.txt") in pairs
    assert ("--index-strategy", "unsafe-best-match") in pairs and ("-e", ".[dev]") in pairs
    assert "--compile-bytecode" not in command and "--cert" not in command  # byte-code: compiled on first import


def test_an_empty_configuration_gives_plain_uv() -> None:
    command = install_env.uv_command(Path("/v"), ".", install_env.pip_settings(""))
    assert not {"--index-url", "--extra-index-url", "--find-links", "--constraint"} & set(command)
