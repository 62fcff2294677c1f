"""Unit-test fixtures shared by the program's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.app import image_users as image_users_module

# image -> the `User` its config says (None: no such manifest); default what images/*/Dockerfile say.
_USERS: dict[str, str | None] = {}


@pytest.fixture(autouse=True, scope="session")
def _images_in_no_registry() -> Iterator[None]:
    """The unit tests' images live in no registry: the program's look-up of an image's user reads _USERS."""
    real = image_users_module.READER
    image_users_module.READER = lambda image: _USERS.get(image, "10001:10001")
    yield
    image_users_module.READER = real


@pytest.fixture()
def image_users() -> Iterator[dict[str, str | None]]:
    """Put an image's user here (by reference) for one test."""
    yield _USERS
    _USERS.clear()
