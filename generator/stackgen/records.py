"""`dataclass` for stackgen's value classes: dataclasses.dataclass without code generation.

The standard decorator writes the source of __init__, __repr__, __eq__, __hash__ and (frozen)
__setattr__/__delattr__ for every class and compiles each with exec(): on Python 3.11 that
is about 0.6 ms a class, and a render defines some twenty of them at import, which made it
the largest single cost of `import stackgen.render`. This decorator lets dataclasses collect
the fields (so dataclasses.fields, replace and asdict work as before) and gives the class
methods written once, here, that behave as the generated ones: the same constructor
(positional or keyword, defaults, default factories, __post_init__), repr, equality (same
class, fields compared in order), hash (frozen classes) and FrozenInstanceError. A method
the class defines itself is kept, as dataclasses does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_MISSING = dataclasses.MISSING


def dataclass(cls: type | None = None, /, *, frozen: bool = False):
    """`@dataclass` or `@dataclass(frozen=True)`, as dataclasses.dataclass."""

    def wrap(cls: type) -> type:
        return _process(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool) -> type:
    own_doc = cls.__dict__.get("__doc__")
    cls.__doc__ = cls.__name__  # a placeholder: dataclasses would build it with inspect.signature
    dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    fields = dataclasses.fields(cls)
    # What the methods below do not implement is refused, not silently done otherwise:
    # field(init=False), InitVar pseudo-fields, and a frozen class's own __eq__ (dataclasses
    # would still give it a __hash__). Use dataclasses.dataclass for such a class.
    unsupported = [f.name for f in fields if not f.init]
    initvar = getattr(dataclasses, "_FIELD_INITVAR", None)  # dataclasses' own marker (3.7-3.13)
    unsupported += [n for n, f in cls.__dataclass_fields__.items() if initvar is not None and getattr(f, "_field_type", None) is initvar]
    if unsupported or (frozen and "__eq__" in cls.__dict__):
        raise TypeError(f"stackgen.records.dataclass cannot make {cls.__qualname__}: init=False or InitVar fields {unsupported}, or a frozen class with its own __eq__")
    names = tuple(f.name for f in fields)
    cls.__doc__ = own_doc if own_doc else f"{cls.__name__}({', '.join(names)})"
    methods = {
        "__init__": _init(cls, fields),
        "__repr__": _repr(tuple(f.name for f in fields if f.repr)),
        "__eq__": _eq(tuple(f.name for f in fields if f.compare)),
        # as dataclasses: hashable when frozen, unhashable when mutable (equality by value)
        "__hash__": _hash(tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))) if frozen else None,
    }
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    own = set(cls.__dict__)
    for name, method in methods.items():
        if name in own or (name == "__hash__" and "__eq__" in own):
            continue  # the class's own method (and the hash that goes with its own equality)
        if method is not None and method not in (_frozen_setattr, _frozen_delattr):  # those two are shared
            method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)  # on the class: its instances' __setattr__ is not involved
    return cls


def _init(cls: type, fields: tuple[dataclasses.Field, ...]):
    names = tuple(f.name for f in fields)
    known = frozenset(names)
    defaults = {f.name: f.default for f in fields if f.default is not _MISSING}
    factories = {f.name: f.default_factory for f in fields if f.default_factory is not _MISSING}
    post_init = hasattr(cls, "__post_init__")
    qualname = cls.__qualname__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            if len(args) > len(names):
                raise TypeError(f"{qualname}.__init__() takes {len(names) + 1} positional arguments but {len(args) + 1} were given")
            for name, value in zip(names, args):
                if name in kwargs:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument '{name}'")
                kwargs[name] = value
        if not known.issuperset(kwargs):
            key = next(k for k in kwargs if k not in known)
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument '{key}'")
        values = self.__dict__  # what the generated __init__ fills, frozen or not, in field order
        for name in names:
            if name in kwargs:
                values[name] = kwargs[name]
            elif name in defaults:
                values[name] = defaults[name]
            elif name in factories:
                values[name] = factories[name]()
            else:
                raise TypeError(f"{qualname}.__init__() missing required argument: '{name}'")
        if post_init:
            self.__post_init__()

    return __init__


def _repr(names: tuple[str, ...]):
    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    return __repr__


def _eq(names: tuple[str, ...]):
    def __eq__(self, other: object):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    return __eq__


def _hash(names: tuple[str, ...]):
    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


def _frozen_setattr(self, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
