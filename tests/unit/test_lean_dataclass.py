"""util.lean.lean_dataclass behaves as @dataclass: arguments, defaults, errors, repr, equality."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from nerdpy.engine.util.lean import lean_dataclass


def _pair():
    def body():
        return {"__annotations__": {"a": "str", "b": "int", "c": "list", "d": "dict | None"},
                "b": 2, "c": field(default_factory=list), "d": None}
    Plain = dataclass(type("Rec", (), body()))
    Wide = lean_dataclass(type("Rec", (), body()))
    return Plain, Wide


@pytest.mark.parametrize("args, kw", [(("x",), {}), (("x", 5), {"d": {}}), ((), {"a": "y", "c": [1]}),
                                      (("x", 1, [2], {"k": 1}), {})])
def test_same_as_dataclass(args, kw):
    Plain, Wide = _pair()
    p, w = Plain(*args, **kw), Wide(*args, **kw)
    assert dataclasses.asdict(p) == dataclasses.asdict(w)
    assert repr(p) == repr(w)
    assert w == Wide(*args, **kw) and not (w != Wide(*args, **kw))
    assert w != Wide("other") and w.__eq__(p) is NotImplemented
    assert Wide("x").c is not Wide("x").c  # a fresh default per instance
    assert dataclasses.replace(w, b=9).b == 9 and [f.name for f in dataclasses.fields(Wide)] == ["a", "b", "c", "d"]
    with pytest.raises(TypeError):
        hash(w)


@pytest.mark.parametrize("args, kw", [((), {}), (("x",), {"a": "y"}), (("x",), {"e": 1}), (("x", 1, [], None, 5), {})])
def test_same_errors_as_dataclass(args, kw):
    Plain, Wide = _pair()
    with pytest.raises(TypeError) as plain:
        Plain(*args, **kw)
    with pytest.raises(TypeError) as wide:
        Wide(*args, **kw)
    assert str(wide.value).split(".", 1)[-1] == str(plain.value).split(".", 1)[-1]


def test_subclass_adds_fields():
    from nerdpy.engine.containers.records import ContainerSpec, StoredSpec

    s = StoredSpec("busybox", args=["true"])
    assert s.image == "busybox" and s.args == ["true"] and s.network == "bridge"
    assert StoredSpec().image == "" and ContainerSpec("x").env == []
    with pytest.raises(TypeError):
        ContainerSpec()


def test_frozen_and_field_flags_as_dataclass():
    import dataclasses as dc

    def body():
        return {"__annotations__": {"a": "str", "b": "int", "c": "object"}, "b": 0,
                "c": field(default=None, repr=False, compare=False)}
    Plain = dataclass(frozen=True)(type("Ref", (), body()))
    Lean = lean_dataclass(frozen=True)(type("Ref", (), body()))
    p, w = Plain("x", 1, c=object()), Lean("x", 1, c=object())
    assert repr(p) == repr(w) == "Ref(a='x', b=1)"
    assert w == Lean("x", 1, c="other") and hash(w) == hash(Lean("x", 1)) == hash(Plain("x", 1))
    assert {w: 1}[Lean("x", 1)] == 1 and w != Lean("x", 2)
    with pytest.raises(dc.FrozenInstanceError):
        w.a = "y"
    with pytest.raises(dc.FrozenInstanceError):
        del w.a
    assert dc.replace(w, b=5).b == 5 and w.b == 1
    Mutable = lean_dataclass(type("M", (), body()))
    m = Mutable("x")
    m.a = "y"
    assert repr(m) == "M(a='y', b=0)" and m == Mutable("y", c=1)
