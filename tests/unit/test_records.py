"""stackgen.records.dataclass behaves as dataclasses.dataclass for what stackgen uses."""

from __future__ import annotations

import dataclasses

import pytest

from stackgen.records import dataclass


def _pair(frozen: bool):
    def body():
        class C:
            a: int
            b: str = "x"
            c: tuple = dataclasses.field(default_factory=tuple)
            d: int = dataclasses.field(default=0, compare=False, repr=False)

        return C

    return dataclass(frozen=frozen)(body()), dataclasses.dataclass(frozen=frozen)(body())


@pytest.mark.parametrize("frozen", [True, False])
def test_same_behaviour_as_dataclasses(frozen):
    ours, std = _pair(frozen)
    for args, kwargs in [((1,), {}), ((1, "y"), {"c": (2,)}), ((), {"a": 3, "d": 5})]:
        o, s = ours(*args, **kwargs), std(*args, **kwargs)
        assert repr(o) == repr(s)
        assert [getattr(o, f.name) for f in dataclasses.fields(o)] == [getattr(s, f.name) for f in dataclasses.fields(s)]
        assert (o == ours(*args, **kwargs)) and not (o == ours(99))
        assert o != s  # another class: never equal, as dataclasses
    assert ours(1, d=1) == ours(1, d=2)  # compare=False is not compared
    assert dataclasses.replace(ours(1, "y"), a=2) == ours(2, "y")
    assert dataclasses.asdict(ours(1)) == dataclasses.asdict(std(1))
    if frozen:
        assert hash(ours(1, "y")) == hash(ours(1, "y")) and hash(ours(1)) == hash(std(1))
        with pytest.raises(dataclasses.FrozenInstanceError):
            ours(1).a = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del ours(1).a
    else:
        assert ours.__hash__ is None and std.__hash__ is None
        o = ours(1)
        o.a = 2
        assert o.a == 2


def test_constructor_errors_and_post_init():
    @dataclass(frozen=True)
    class P:
        a: int
        b: int = 1

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="missing required argument: 'a'"):
        P()
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        P(1, z=2)
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        P(1, a=2)
    with pytest.raises(TypeError, match="positional arguments"):
        P(1, 2, 3)
    with pytest.raises(ValueError, match="negative"):
        P(-1)
    assert repr(P(1)) == "test_constructor_errors_and_post_init.<locals>.P(a=1, b=1)"


def test_default_factory_runs_per_instance():
    @dataclass
    class M:
        items: list = dataclasses.field(default_factory=list)

    one, two = M(), M()
    one.items.append(1)
    assert two.items == [] and M([5]).items == [5]


def test_own_methods_are_kept():
    @dataclass(frozen=True)
    class Q:
        a: int

        def __repr__(self) -> str:
            return "mine"

    assert repr(Q(1)) == "mine" and Q(1) == Q(1)


def test_what_it_does_not_implement_is_refused():
    """init=False fields, InitVar and a frozen class's own __eq__ would behave differently from
    dataclasses here: the decorator refuses them instead."""
    with pytest.raises(TypeError, match="init=False or InitVar"):

        @dataclass
        class NoInit:
            a: int
            b: int = dataclasses.field(init=False, default=0)

    with pytest.raises(TypeError, match="init=False or InitVar"):

        @dataclass
        class WithInitVar:
            a: int
            b: dataclasses.InitVar[int] = 0

    with pytest.raises(TypeError, match="frozen class with its own __eq__"):

        @dataclass(frozen=True)
        class OwnEq:
            a: int

            def __eq__(self, other):
                return True
