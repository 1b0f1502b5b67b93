"""`wide_dataclass`: @dataclass for classes with many fields, made cheaply at import.

@dataclass compiles an `__init__`, `__repr__` and `__eq__` of its own for every class (source
text through exec): about 50 µs a field, some 4 ms for the container spec's ~85 fields, paid at
every command's start. A class decorated with `wide_dataclass` is a dataclass (fields(),
asdict(), replace() work) whose three methods are written once, here, for all of them, and
behave as the generated ones: the same positional and keyword arguments, defaults and default
factories, TypeErrors, repr and field-by-field equality (no hash, as for @dataclass(eq=True)).
Instances cost about as much to make; use it where a class's fields number in the dozens.

Standard library only.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

_PLANS: dict[type, tuple] = {}


def _plan(cls: type) -> tuple:
    """(name, default, default_factory) of each of `cls`'s init fields, in order."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple((f.name, f.default, f.default_factory) for f in fields(cls) if f.init)
    return plan


def _init(self, *args, **kw) -> None:
    cls = type(self)
    plan = _PLANS.get(cls) or _plan(cls)
    if len(args) > len(plan):
        need = sum(1 for _, default, factory in plan if default is MISSING and factory is MISSING)
        takes = f"{len(plan) + 1}" if need == len(plan) else f"from {need + 1} to {len(plan) + 1}"
        raise TypeError(f"{cls.__name__}.__init__() takes {takes} positional arguments "
                        f"but {len(args) + 1} were given")
    d = self.__dict__
    for (name, _, _), value in zip(plan, args):
        if name in kw:
            raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument '{name}'")
        d[name] = value
    for name, default, factory in plan[len(args):]:
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
    return f"{type(self).__qualname__}({', '.join(f'{p[0]}={getattr(self, p[0])!r}' for p in _plan(type(self)))})"


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = [p[0] for p in _plan(type(self))]
    return [getattr(self, n) for n in names] == [getattr(other, n) for n in names]


def wide_dataclass(cls: type) -> type:
    """@dataclass (mutable, init, repr, eq) without compiling methods for `cls`."""
    for name in ("__init__", "__repr__", "__eq__"):
        if name in cls.__dict__:
            raise TypeError(f"wide_dataclass {cls.__name__} defines {name} itself")
    doc = cls.__dict__.get("__doc__")
    cls.__doc__ = doc or "-"  # (@dataclass would make one from the signature of object.__init__: slow)
    cls = dataclass(init=False, repr=False, eq=False)(cls)
    if not doc:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields(cls))})"
    cls.__init__ = _init
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    cls.__hash__ = None
    return cls
