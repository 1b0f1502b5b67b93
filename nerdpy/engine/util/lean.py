"""`lean_dataclass`: @dataclass for the classes every command loads, made cheaply at import.

@dataclass compiles an `__init__`, `__repr__` and `__eq__` of its own for every class (and for a
frozen one `__setattr__`, `__delattr__` and `__hash__`), from source text through exec: 0.3 ms
for a class of three fields, 0.7 ms frozen, some 4 ms for the container spec's ~85 fields, paid
at every command's start. A class decorated with `lean_dataclass` (or `lean_dataclass(frozen=True)`)
is a dataclass (fields(), asdict(), replace() work) whose methods are written once, here, for all
of them, and behave as the generated ones: the same positional and keyword arguments, defaults
and default factories, TypeErrors, repr (fields with repr=False left out), field-by-field
equality (compare=False fields left out), no hash for a mutable class, a hash of the fields and
FrozenInstanceError on assignment for a frozen one. Making an instance costs about the same.
Not for classes that define those methods themselves, use __post_init__, order or slots.

Standard library only.
"""
from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields

_PLANS: dict[type, tuple] = {}


def _plan(cls: type) -> tuple:
    """((name, default, default_factory) of each init field, repr names, compare names, hash names)."""
    plan = _PLANS.get(cls)
    if plan is None:
        fs = fields(cls)
        plan = _PLANS[cls] = (
            tuple((f.name, f.default, f.default_factory) for f in fs if f.init),
            tuple(f.name for f in fs if f.repr),
            tuple(f.name for f in fs if f.compare),
            tuple(f.name for f in fs if (f.compare if f.hash is None else f.hash)),
        )
    return plan


def _init(self, *args, **kw) -> None:
    cls = type(self)
    init = (_PLANS.get(cls) or _plan(cls))[0]
    if len(args) > len(init):
        need = sum(1 for _, default, factory in init if default is MISSING and factory is MISSING)
        takes = f"{len(init) + 1}" if need == len(init) else f"from {need + 1} to {len(init) + 1}"
        raise TypeError(f"{cls.__name__}.__init__() takes {takes} positional arguments "
                        f"but {len(args) + 1} were given")
    d = self.__dict__  # (as object.__setattr__: frozen classes too)
    for (name, _, _), value in zip(init, args):
        if name in kw:
            raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument '{name}'")
        d[name] = value
    for name, default, factory in init[len(args):]:
        if name in kw:
            d[name] = kw.pop(name)
        elif default is not MISSING:
            d[name] = default
        elif factory is not MISSING:
            d[name] = factory()
        else:
            raise TypeError(f"{cls.__name__}.__init__() missing 1 required positional argument: '{name}'")
    if kw:  # what is left names no field
        raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument '{next(iter(kw))}'")


def _repr(self) -> str:
    return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in _plan(type(self))[1])})"


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = _plan(type(self))[2]
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self) -> int:
    return hash(tuple(getattr(self, n) for n in _plan(type(self))[3]))


def _frozen_setattr(self, name, value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def lean_dataclass(cls: type | None = None, *, frozen: bool = False):
    """@dataclass (init, repr, eq; `frozen` as @dataclass's) without compiling methods for `cls`."""
    if cls is None:
        return lambda c: lean_dataclass(c, frozen=frozen)
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__post_init__"):
        if name in cls.__dict__:
            raise TypeError(f"lean_dataclass {cls.__name__} defines {name} itself")
    doc = cls.__dict__.get("__doc__")
    cls.__doc__ = doc or "-"  # (@dataclass would make one from the signature of object.__init__: slow)
    cls = dataclass(init=False, repr=False, eq=False)(cls)
    if not doc:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields(cls))})"
    cls.__init__ = _init
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    if frozen:
        cls.__hash__ = _hash
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
        cls.__dataclass_params__.frozen = True  # (what dataclasses.is_dataclass users may read)
    else:
        cls.__hash__ = None
    return cls
