"""The lock files pin every dependency pyproject.toml names, at a version its bounds allow."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{lock}: '{line}' is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("lock, groups", [("requirements.lock", ()), ("requirements-test.lock", ("test",))])
def test_each_dependency_is_pinned_within_its_bounds(lock, groups):
    locked = pins(lock)
    wanted = list(project()["dependencies"])
    for group in groups:
        wanted += project()["optional-dependencies"][group]
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is missing from {lock}: re-make it (README, 'Reproducible installs')"
        assert req.specifier.contains(locked[name], prereleases=True), \
            f"{lock} pins {req.name}=={locked[name]}, outside pyproject's {req.specifier}"


def test_the_runtime_lock_holds_no_test_tools():
    assert not {"pytest", "playwright", "hypothesis"} & set(pins("requirements.lock"))
