"""stackgen.records behaves as dataclasses (dataclass, field, fields, replace) for what it
implements, and refuses the rest."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from stackgen import records
from stackgen.records import FrozenInstanceError, dataclass, field, fields, replace


def _pair(frozen: bool):
    def body(field):
        class C:
            a: int
            b: str = "x"
            c: tuple = field(default_factory=tuple)
            d: int = field(default=0, compare=False, repr=False)

        return C

    return dataclass(frozen=frozen)(body(field)), dataclasses.dataclass(frozen=frozen)(body(dataclasses.field))


def _field_options(fs) -> list[tuple]:
    """What a field says of itself, comparable between the two modules."""
    return [
        (f.name, f.type, None if f.default is records.MISSING or f.default is dataclasses.MISSING else f.default,
         f.default_factory not in (records.MISSING, dataclasses.MISSING), f.repr, f.compare, f.hash)
        for f in fs
    ]


@pytest.mark.parametrize("frozen", [True, False])
def test_same_behaviour_as_dataclasses(frozen):
    ours, std = _pair(frozen)
    assert _field_options(fields(ours)) == _field_options(dataclasses.fields(std))
    assert ours.__match_args__ == std.__match_args__ == ("a", "b", "c", "d")
    for args, kwargs in [((1,), {}), ((1, "y"), {"c": (2,)}), ((), {"a": 3, "d": 5})]:
        o, s = ours(*args, **kwargs), std(*args, **kwargs)
        assert repr(o) == repr(s)
        assert fields(o) == fields(ours)
        assert vars(o) == vars(s)
        assert (o == ours(*args, **kwargs)) and not (o == ours(99))
        assert o != s  # another class: never equal, as dataclasses
    assert ours(1, d=1) == ours(1, d=2)  # compare=False is not compared
    assert vars(replace(ours(1, "y"), a=2)) == vars(dataclasses.replace(std(1, "y"), a=2))
    if frozen:
        assert hash(ours(1, "y")) == hash(ours(1, "y")) and hash(ours(1)) == hash(std(1))
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
            ours(1).a = 2
        with pytest.raises(FrozenInstanceError, match="cannot delete field 'a'"):
            del ours(1).a
    else:
        assert ours.__hash__ is None and std.__hash__ is None
        o = ours(1)
        o.a = 2
        assert o.a == 2


def test_class_attributes_left_as_dataclasses_leaves_them():
    """A plain default stays on the class, field(default=) becomes it, a default_factory or a
    field() without default leaves none."""
    ours, std = _pair(frozen=True)
    for name in ("a", "b", "c", "d"):
        assert getattr(ours, name, "absent") == getattr(std, name, "absent"), name


def test_inheritance_as_dataclasses():
    """A record base's fields come first; a name declared again keeps its place and takes the
    new declaration, whose default may be the base's class attribute (getattr, as dataclasses)."""

    def make(decorate, field_fn):
        base = decorate(type("B", (), {"__annotations__": {"a": "int", "b": "int", "c": "list"}, "b": 1, "c": field_fn(default_factory=list)}))
        return decorate(type("C", (base,), {"__annotations__": {"d": "int", "a": "int", "b": "str"}, "d": 4, "a": 0}))

    ours, std = make(dataclass, field), make(dataclasses.dataclass, dataclasses.field)
    assert _field_options(fields(ours)) == _field_options(dataclasses.fields(std))
    assert [f.name for f in fields(ours)] == ["a", "b", "c", "d"] and fields(ours)[1].default == 1
    assert repr(ours()) == repr(std()) == "C(a=0, b=1, c=[], d=4)"
    assert replace(ours(), c=[2]) == ours(0, 1, [2], 4)


def test_frozen_instance_error_is_an_attribute_error():
    """As dataclasses': `except AttributeError` and hasattr-style code see it as one."""
    assert issubclass(FrozenInstanceError, AttributeError)


def test_an_undecorated_subclass_of_a_frozen_record_keeps_its_own_attributes():
    """As dataclasses: its fields stay frozen, any other attribute is set as usual."""
    results = []
    for deco in (dataclass(frozen=True), dataclasses.dataclass(frozen=True)):
        base = deco(type("Base", (), {"__annotations__": {"a": "int"}}))
        sub = type("Sub", (base,), {})(1)
        sub.other = 2
        with pytest.raises(AttributeError, match="cannot assign to field 'a'"):
            sub.a = 3
        del sub.other
        results.append((vars(sub), type(base(1)).__setattr__ is not object.__setattr__))
    assert results[0] == results[1] == ({"a": 1}, True)


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


def test_replace_runs_the_constructor():
    """As dataclasses.replace: __post_init__ and its checks run again, a name that is not a
    field is a TypeError, and only instances are accepted."""
    @dataclass(frozen=True)
    class P:
        a: int
        name: str = ""

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")
            if not self.name:
                object.__setattr__(self, "name", f"p{self.a}")

    assert replace(P(1), a=2) == P(2, "p1")  # the name is kept, not derived again
    assert replace(P(1, ""), a=2, name="") == P(2)
    with pytest.raises(ValueError, match="negative"):
        replace(P(1), a=-1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        replace(P(1), z=2)
    with pytest.raises(TypeError, match="record instances"):
        replace(P, a=2)
    with pytest.raises(TypeError, match="record instances"):
        replace(object())
    with pytest.raises(TypeError, match="record type or instance"):
        fields(object())


def test_default_factory_runs_per_instance():
    @dataclass
    class M:
        items: list = field(default_factory=list)

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
    """ClassVar, InitVar, KW_ONLY, a dataclasses.field(), a standard dataclass as a base and a
    frozen class's own __eq__ would behave differently from dataclasses here: refused."""
    refused = [
        {"__annotations__": {"a": "ClassVar[int]"}},
        {"__annotations__": {"a": "typing.ClassVar[int]"}},
        {"__annotations__": {"a": ClassVar[int]}},
        {"__annotations__": {"a": ClassVar}},
        {"__annotations__": {"a": "InitVar[int]"}},
        {"__annotations__": {"a": "dataclasses.InitVar[int]"}},
        {"__annotations__": {"a": dataclasses.InitVar[int]}},
        {"__annotations__": {"a": dataclasses.InitVar}},
        {"__annotations__": {"_": "KW_ONLY", "a": "int"}},
        {"__annotations__": {"_": dataclasses.KW_ONLY, "a": "int"}},
        {"__annotations__": {"a": "int"}, "a": dataclasses.field(default=0)},
        {"__annotations__": {"a": "int"}, "a": dataclasses.field(init=False, default=0)},
    ]
    for namespace in refused:
        with pytest.raises(TypeError, match="cannot make C"):
            dataclass(type("C", (), namespace))
    standard = dataclasses.dataclass(type("Std", (), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError, match="its base Std is a standard dataclass"):
        dataclass(type("C", (standard,), {"__annotations__": {"b": "int"}}))
    with pytest.raises(TypeError, match="frozen class with its own __eq__"):
        dataclass(frozen=True)(type("C", (), {"__annotations__": {"a": "int"}, "__eq__": lambda s, o: True}))
    with pytest.raises(ValueError, match="cannot specify both default and default_factory"):
        field(default=1, default_factory=list)


# Class shapes, each built with both modules: a base (or none) and the class, fields drawn
# from a few names (so that the class declares some of its base's again), each required,
# with a plain default (hashable or not), field(default=), field(default_factory=) or a
# bare field(), with the field options drawn too; frozen or not, each.
SHAPES = ("required", "plain", "field_default", "factory", "bare_field") * 2 + ("mutable",)
FIELD = st.tuples(st.sampled_from(SHAPES), st.booleans(), st.booleans(), st.sampled_from([None, True, False]))
SPECS = st.dictionaries(st.sampled_from("abcde"), FIELD, max_size=4)


def _namespace(specs: dict, field_fn) -> dict:
    namespace: dict = {"__annotations__": {name: "int" for name in specs}, "__module__": __name__}
    for i, (name, (shape, rep, compare, hash_)) in enumerate(specs.items()):
        options = {"repr": rep, "compare": compare, "hash": hash_}
        if shape == "plain":
            namespace[name] = 10 + i
        elif shape == "mutable":
            namespace[name] = [i]
        elif shape == "field_default":
            namespace[name] = field_fn(default=20 + i, **options)
        elif shape == "factory":
            namespace[name] = field_fn(default_factory=lambda i=i: (30 + i,), **options)
        elif shape == "bare_field":
            namespace[name] = field_fn(**options)
    return namespace


def _build(decorate, field_fn, base_specs, base_frozen, specs, frozen, stray_field):
    """The class, or the exception its decoration raised."""
    try:
        base = object if base_specs is None else decorate(type("B", (), _namespace(base_specs, field_fn)), frozen=base_frozen)
        namespace = _namespace(specs, field_fn)
        if stray_field:
            namespace["z"] = field_fn(default=0)  # a field() without an annotation
        return decorate(type("C", (base,), namespace), frozen=frozen)
    except (TypeError, ValueError) as e:
        return e


def _outcome(make, *args, **kwargs):
    """What make(...) returns, or the kind of error it raised (each module's
    FrozenInstanceError is an AttributeError)."""
    try:
        return make(*args, **kwargs)
    except AttributeError:
        return "AttributeError"
    except (TypeError, ValueError) as e:
        return type(e).__name__


def _rarely(p: int) -> st.SearchStrategy[bool]:
    """True about one time in `p`: the faults are drawn, but most classes are made."""
    return st.sampled_from([False] * (p - 1) + [True])


@settings(max_examples=300)
@given(
    base_specs=st.none() | SPECS,
    base_frozen_differs=_rarely(5),
    specs=SPECS,
    required_first=st.booleans(),
    frozen=st.booleans(),
    stray_field=_rarely(5),
    positional=st.integers(0, 5),
    keywords=st.just({}) | st.dictionaries(st.sampled_from("abcdez"), st.integers(0, 3), max_size=2),
)
def test_class_shapes_as_dataclasses(base_specs, base_frozen_differs, specs, required_first, frozen, stray_field, positional, keywords):
    if required_first:  # fewer classes refused for a required field after a defaulted one
        specs = dict(sorted(specs.items(), key=lambda item: item[1][0] not in ("required", "bare_field")))
    base_frozen = frozen != base_frozen_differs
    ours = _build(lambda c, frozen: dataclass(c, frozen=frozen), field, base_specs, base_frozen, specs, frozen, stray_field)
    std = _build(lambda c, frozen: dataclasses.dataclass(c, frozen=frozen), dataclasses.field, base_specs, base_frozen, specs, frozen, stray_field)
    event(f"class: {str(std)[:40] if isinstance(std, Exception) else 'made'}")  # --hypothesis-show-statistics
    if isinstance(std, Exception):  # refused by both, for the same reason (Python 3.12 on adds
        # the defaulted field's name to "non-default argument 'b' follows default argument")
        assert type(ours) is type(std) and str(std).startswith(str(ours)), (ours, std)
        return
    assert isinstance(ours, type), ours
    assert _field_options(fields(ours)) == _field_options(dataclasses.fields(std))
    assert ours.__match_args__ == std.__match_args__
    assert (ours.__hash__ is None) == (std.__hash__ is None)
    for name in "abcdez":
        assert getattr(ours, name, "absent") == getattr(std, name, "absent"), name
    args = list(range(positional))
    kwargs = {**{name: 5 for name in std.__match_args__[positional:]}, **keywords}  # + keywords: maybe a name given twice, or not a field
    o, s = _outcome(ours, *args, **kwargs), _outcome(std, *args, **kwargs)
    event(f"instance: {s if isinstance(s, str) else 'made'}")
    if isinstance(s, str):
        assert o == s
        return
    assert repr(o) == repr(s)
    assert vars(o) == vars(s)
    again_o, again_s = ours(*args, **kwargs), std(*args, **kwargs)
    assert (o == again_o) and (s == again_s)
    if frozen:
        assert hash(o) == hash(s)
        assert _outcome(setattr, o, "a", 1) == _outcome(setattr, s, "a", 1) == "AttributeError"
    for change in ({"a": 7}, {"z": 7}, {name: 9 for name in specs}):
        ro, rs = _outcome(replace, o, **change), _outcome(dataclasses.replace, s, **change)
        if isinstance(rs, str):  # the error's kind
            assert ro == rs
        else:
            assert (vars(ro), repr(ro), ro == o) == (vars(rs), repr(rs), rs == s)
