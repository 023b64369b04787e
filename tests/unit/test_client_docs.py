"""Both clients read like a library: ``help(zkq.HttpClient)`` and ``help(zkq.Client)``
document the class and every public method, each with an example.  A method added later
without one fails here."""

from __future__ import annotations

import inspect
import pydoc

import pytest

import zkq

CLIENTS = [zkq.HttpClient, zkq.Client]


def public_methods(cls: type) -> list[str]:
    return [
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    ]


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring_with_an_example(cls: type) -> None:
    assert ">>> " in (cls.__doc__ or ""), f"{cls.__name__} has no example"
    undocumented = [
        name
        for name in public_methods(cls)
        if ">>> " not in (inspect.getdoc(getattr(cls, name)) or "")
    ]
    assert undocumented == [], f"{cls.__name__}: document these, with an example: {undocumented}"


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_help_shows_them(cls: type) -> None:
    text = pydoc.render_doc(cls, renderer=pydoc.TextDoc())
    for name in public_methods(cls):
        assert f"{name}(" in text
    assert ">>> " in text


def test_the_http_example_uses_the_url_the_dev_cluster_exports() -> None:
    assert 'os.environ["ZKQ_URL"]' in (zkq.HttpClient.__doc__ or "")
