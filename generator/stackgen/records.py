"""`dataclass`, `field`, `fields`, `replace` for stackgen's value classes, without dataclasses.

The standard decorator writes the source of __init__, __repr__, __eq__, __hash__ and (frozen)
__setattr__/__delattr__ for every class and compiles each with exec(): on Python 3.11 that
is about 0.6 ms a class, and a render defines some twenty of them at import. Importing
dataclasses itself (and `copy`, which it imports) cost another ~1.4 ms a process, and
letting it collect the fields ~0.1 ms a class. This module does both jobs itself, with
methods written once, here, that behave as the generated ones: the same constructor
(positional or keyword, defaults, default factories, __post_init__), repr, equality (same
class, fields compared in order), hash (frozen classes), FrozenInstanceError, __match_args__,
fields from record base classes (in the order dataclasses gives them), and the same errors
for a mutable default, a required field after a defaulted one or a field() without an
annotation. A method the class defines itself is kept, as dataclasses does.

What it does not implement is refused with a TypeError rather than done otherwise:
ClassVar, InitVar and KW_ONLY annotations, a dataclasses.field() default, a standard
dataclass as a base class, and a frozen class's own __eq__ (dataclasses would still give it
a __hash__). Use dataclasses.dataclass for such a class.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_origin


class _MissingType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _MissingType()  # "no default", as dataclasses.MISSING
# Annotations whose meaning dataclasses gives them and this module does not: refused.
_PSEUDO_FIELDS = frozenset({"ClassVar", "InitVar", "KW_ONLY"})


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen record (as dataclasses.FrozenInstanceError)."""


class Field:
    """One field of a record: what `field()` declares, and its name and annotation once the
    decorator has seen the class. The options are those of dataclasses.Field that stackgen uses."""

    __slots__ = ("name", "type", "default", "default_factory", "repr", "compare", "hash")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool, hash: bool | None) -> None:
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.hash = hash

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r}, default_factory={self.default_factory!r}, repr={self.repr}, compare={self.compare}, hash={self.hash})"


def field(*, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True, compare: bool = True, hash: bool | None = None) -> Any:
    """As dataclasses.field, for the options above."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, repr, compare, hash)


def fields(class_or_instance: Any) -> tuple[Field, ...]:
    """A record's fields, in order (as dataclasses.fields)."""
    try:
        return class_or_instance.__record_fields__
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def replace(obj: Any, /, **changes: Any) -> Any:
    """A new record like `obj` with `changes`, made by its __init__ (so __post_init__ and its
    checks run, and a name that is not a field is a TypeError), as dataclasses.replace."""
    if isinstance(obj, type) or not hasattr(type(obj), "__record_fields__"):
        raise TypeError("replace() should be called on record instances")
    for f in type(obj).__record_fields__:
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def dataclass(cls: type | None = None, /, *, frozen: bool = False):
    """`@dataclass` or `@dataclass(frozen=True)`, as dataclasses.dataclass."""

    def wrap(cls: type) -> type:
        return _process(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool) -> type:
    if frozen and "__eq__" in cls.__dict__:
        raise TypeError(f"stackgen.records.dataclass cannot make {cls.__qualname__}: a frozen class with its own __eq__")
    record_fields = _collect(cls, frozen)
    cls.__record_fields__ = record_fields
    cls.__record_frozen__ = frozen
    names = tuple(f.name for f in record_fields)
    if not cls.__dict__.get("__doc__"):
        cls.__doc__ = f"{cls.__name__}({', '.join(names)})"
    methods: dict[str, Any] = {
        "__init__": _init(cls, record_fields),
        "__repr__": _repr(tuple(f.name for f in record_fields if f.repr)),
        "__eq__": _eq(tuple(f.name for f in record_fields if f.compare)),
        # as dataclasses: hashable when frozen, unhashable when mutable (equality by value)
        "__hash__": _hash(tuple(f.name for f in record_fields if (f.compare if f.hash is None else f.hash))) if frozen else None,
        "__match_args__": names,
    }
    if frozen:
        methods["__setattr__"], methods["__delattr__"] = _frozen(cls, frozenset(names))
    own = set(cls.__dict__)
    for name, method in methods.items():
        if name in own or (name == "__hash__" and "__eq__" in own):
            continue  # the class's own (and the hash that goes with its own equality)
        if callable(method):
            method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)  # on the class: its instances' __setattr__ is not involved
    return cls


def _collect(cls: type, frozen: bool) -> tuple[Field, ...]:
    """The fields of `cls`: its record bases' (from the most basic on), then its own
    annotations in definition order; a name declared again keeps its place (as dataclasses)."""
    found: dict[str, Field] = {}
    record_bases = frozen_bases = 0
    for base in reversed(cls.__mro__[1:]):
        if "__dataclass_fields__" in base.__dict__:
            raise TypeError(f"stackgen.records.dataclass cannot make {cls.__qualname__}: its base {base.__qualname__} is a standard dataclass")
        inherited = base.__dict__.get("__record_fields__")
        if inherited is not None:
            record_bases += 1
            frozen_bases += base.__record_frozen__
            found.update((f.name, f) for f in inherited)
    annotations = cls.__annotations__  # the class's own (Python 3.10 on); strings here
    for name, annotation in annotations.items():
        found[name] = _own_field(cls, name, annotation)
    for name, value in cls.__dict__.items():
        if isinstance(value, Field) and name not in annotations:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    # (the checks in dataclasses' order, so that a class with two faults gets the same error)
    if frozen_bases and not frozen:
        raise TypeError("cannot inherit non-frozen dataclass from a frozen one")
    if record_bases and not frozen_bases and frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    _check_defaults(found.values())
    return tuple(found.values())


def _own_field(cls: type, name: str, annotation: Any) -> Field:
    """The field `name: annotation [= default]` of `cls`; leaves the class attribute as
    dataclasses does (the default, or none where there is no plain default)."""
    if _is_pseudo_field(annotation):
        raise TypeError(f"stackgen.records.dataclass cannot make {cls.__qualname__}: {name}: {annotation} (ClassVar, InitVar, KW_ONLY)")
    default = getattr(cls, name, MISSING)  # as dataclasses: a base class's attribute too
    if isinstance(default, Field):
        made = default
        if made.default is MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, made.default)
    elif type(default).__module__ == "dataclasses":
        raise TypeError(f"stackgen.records.dataclass cannot make {cls.__qualname__}: {name} = {default!r}: use stackgen.records.field")
    else:
        made = Field(default, MISSING, True, True, None)
    made.name, made.type = name, annotation
    if made.default is not MISSING and type(made.default).__hash__ is None:
        raise ValueError(f"mutable default {type(made.default)} for field {name} is not allowed: use default_factory")
    return made


def _is_pseudo_field(annotation: Any) -> bool:
    """ClassVar[...], InitVar[...] or KW_ONLY: as a string (`from __future__ import annotations`,
    possibly module-qualified) or as the object."""
    if isinstance(annotation, str):
        return annotation.split("[", 1)[0].strip().rpartition(".")[2] in _PSEUDO_FIELDS
    return annotation is ClassVar or get_origin(annotation) is ClassVar or "dataclasses" in (type(annotation).__module__, getattr(annotation, "__module__", None))


def _check_defaults(in_order: Any) -> None:
    """The constructor's parameters in field order: none without a default after one with."""
    defaulted = False
    for f in in_order:
        if f.default is MISSING and f.default_factory is MISSING:
            if defaulted:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            defaulted = True


def _init(cls: type, in_order: tuple[Field, ...]):
    names = tuple(f.name for f in in_order)
    known = frozenset(names)
    defaults = {f.name: f.default for f in in_order if f.default is not MISSING}
    factories = {f.name: f.default_factory for f in in_order if f.default_factory is not MISSING}
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


def _frozen(cls: type, names: frozenset[str]):
    """__setattr__ and __delattr__ of a frozen record, as dataclasses': a field, or any name
    on an instance of the class itself, is refused; an undecorated subclass's own attributes
    are set as usual."""

    def __setattr__(self, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__
