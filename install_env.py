"""`make install`: the project and its dependencies into a virtual environment, with uv where it can be had.

uv unpacks wheels in parallel; pip one at a time. Side by side on 2 cores, from nothing into a fresh venv (the same
local torch 2.14.1 wheel, byte-code compiled by both): pip 2 min 44 s, uv 1 min 29 s (docs/demo.md). uv does not
read pip's configuration, so the indexes, find-links, constraints and certificate bundle that pip is configured with
(`pip config list`: files and PIP_* variables) are handed to it as flags, and it picks the best version across all
indexes, as pip does. Without uv (it cannot be installed, or it fails), pip installs as before.

Neither compiles byte-code at install (1 min 29 s for about 19,900 modules, of which a demo imports about 4,800):
Python compiles each module on its first import and caches it in the venv, which the Makefile lets it do even where
PYTHONDONTWRITEBYTECODE is set (docs/demo.md).

    python install_env.py .venv '.[dev]'

Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

# pip's configuration key (without its section) -> uv's flag; values may list several, space-separated
UV_FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
            "constraint": "--constraint"}


def pip_settings(listing: str) -> dict[str, list[str]]:
    """The settings uv needs from the output of `pip config list` (`section.key='value'` lines; the later of two
    sources wins, as in pip, which lists the environment's PIP_* variables last)."""
    settings: dict[str, list[str]] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        if name in UV_FLAGS or name == "cert":
            settings[name] = shlex.split(value.strip().strip("'\""))
    return settings


def uv_command(venv: Path, target: str, settings: dict[str, list[str]]) -> list[str]:
    """`uv pip install -e TARGET` into the venv, with pip's indexes, links and constraints."""
    command = [str(venv / "bin" / "uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
               "--index-strategy", "unsafe-best-match", "-e", target]
    for name, flag in UV_FLAGS.items():
        for value in settings.get(name, []):
            command += [flag, value]
    return command


def install(venv: Path, target: str) -> None:
    """Install TARGET (editable) into VENV, which must exist: uv when it installs, else pip."""
    pip = venv / "bin" / "pip"
    if subprocess.run([str(pip), "install", "-q", "uv"]).returncode == 0:
        listing = subprocess.run([str(pip), "config", "list"], capture_output=True, text=True, check=True).stdout
        settings = pip_settings(listing)
        env = dict(os.environ)
        if settings.get("cert"):
            env["SSL_CERT_FILE"] = settings["cert"][0]
        if subprocess.run(uv_command(venv, target, settings), env=env).returncode == 0:
            return
        print("install_env: uv failed; installing with pip instead", file=sys.stderr)
    else:
        print("install_env: uv could not be installed; installing with pip", file=sys.stderr)
    subprocess.run([str(pip), "install", "--no-compile", "-e", target], check=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python install_env.py VENV TARGET   (e.g. .venv '.[dev]')")
    try:
        install(Path(sys.argv[1]), sys.argv[2])
    except subprocess.CalledProcessError as err:
        sys.exit(f"install_env: {' '.join(map(str, err.cmd))} failed with exit status {err.returncode}")
