"""make setup installs exactly the versions requirements/ pins, and nothing else."""

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(*names: str) -> dict[str, str]:
    """``{package: version}`` that ``requirements/<name>.txt`` pin for this interpreter."""
    pins = {}
    for name in names:
        for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
            m = PIN.match(line)
            if m and (m[3] is None or Marker(m[3]).evaluate()):
                pins[canonicalize_name(m[1])] = m[2]
    return pins


def test_the_pins_are_read_with_their_markers():
    pins = locked("runtime")
    assert pins["numpy"] and pins["papermill"] and "pytest" not in pins
    # papermill needs aiohttp on Python 3.12 only: the marker decides
    assert ("aiohttp" in pins) == (sys.version_info[:2] == (3, 12))


def test_the_environment_holds_exactly_the_locked_versions():
    made = list(Path(sys.prefix).glob(".installed-*"))  # what make setup leaves, one per set of extras
    if not made:
        pytest.skip(f"{sys.prefix} was not made by make setup")
    extras = {e for path in made for e in path.name.removeprefix(".installed-").split(",") if e}
    expected = locked("build", "runtime", *sorted(extras))
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop("assignment1")
    assert installed == expected
