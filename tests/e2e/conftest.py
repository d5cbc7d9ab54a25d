"""Shared fixtures for the end-to-end tests."""

import pytest

import qemu as q


@pytest.fixture(scope="session")
def guest(tmp_path_factory):
    """The boot-sector test guest, assembled once per run."""
    return q.build_guest(tmp_path_factory.mktemp("guest"))
