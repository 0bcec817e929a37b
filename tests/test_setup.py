"""make setup installs exactly the versions requirements/ pins, and nothing else."""

import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT


def locked(*names: str) -> dict[str, str]:
    """``{package: version}`` that ``requirements/<name>.txt`` pin for this interpreter (hash lines aside)."""
    pins = {}
    for name in names:
        for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
            if line and not line[0].isspace() and not line.startswith("#"):
                req = Requirement(line.removesuffix("\\"))
                if req.marker is None or req.marker.evaluate():
                    (pin,) = req.specifier
                    pins[canonicalize_name(req.name)] = pin.version
    return pins


def test_the_environment_holds_exactly_the_locked_versions():
    made = list(Path(sys.prefix).glob(".installed-*"))  # what make setup leaves, one per set of extras
    if not made:
        pytest.skip(f"{sys.prefix} was not made by make setup")
    extras = {e for path in made for e in path.name.removeprefix(".installed-").split(",") if e}
    expected = locked("build", "runtime", *sorted(extras))
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop("assignment1")
    assert installed == expected
