"""The one registry class: duplicates refused, unknown names listed, and a name registered for a while removed."""

import pytest

from core.utils.registry import Registry, UnknownNameError


def test_register_unregister_and_unknown_names():
    r: Registry[int] = Registry("thing")
    r.register("a", kind="x")(1)
    r.register("b", kind="y")(2)
    with pytest.raises(ValueError, match="'a' is already registered"):
        r.register("a")(3)
    assert r.names(kind="x") == ["a"] and r.get("b") == 2
    r.unregister("a")
    assert "a" not in r and r.names() == ["b"]
    with pytest.raises(UnknownNameError, match="unknown thing 'a'; valid names: b"):
        r.unregister("a")
    r.register("a")(4)  # the name is free again
    assert r.get("a") == 4
