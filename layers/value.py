"""``@frozen``: the house's value types, as ``dataclasses.dataclass(frozen=True)`` makes them, built for less.

A frozen dataclass gets six methods compiled from source text when its module is imported
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``): ~2.9 M
instructions per class on CPython 3.11, and the ~50 classes ``pybuild run --rm`` loads were over a fifth
of that command's instructions. Here dataclasses compiles ``__init__`` only (and for a ``slots=True``
class its frozen ``__setattr__`` and ``__delattr__``); the rest is shared by every value type, as attrs
shares its frozen ``__setattr__``:

- ``__eq__``: an instance of the same class (not a subclass) whose compared fields are equal;
  ``__hash__``: over the hashed fields; ``__repr__``: ``Name(field=value, ...)`` over the shown fields.
  Fields opt out with ``field(compare=False)``, ``field(hash=False)``, ``field(repr=False)``, as with
  dataclasses, and a class's own ``__eq__``, ``__hash__`` or ``__repr__`` is kept.
- ``__setattr__`` refuses a field once it is set, and any other attribute, and ``__delattr__`` refuses
  always, with dataclasses' :class:`~dataclasses.FrozenInstanceError`: ``__init__`` sets each field
  once, so a made value cannot change (~0.2 us more a field than a frozen dataclass's ``__init__``).
  ``__post_init__`` sets derived fields with ``object.__setattr__``, as with dataclasses.

``dataclasses.fields``, ``replace``, ``asdict`` and pattern matching work unchanged. What differs
from ``frozen=True`` (without slots): ``__dataclass_params__.frozen`` is false, and a subclass must be
a ``@frozen`` class too (dataclasses refuses a frozen dataclass over a non-frozen one). ``order=True``
classes stay plain frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter

__all__ = ["frozen"]


def frozen(cls=None, /, *, slots: bool = False, kw_only: bool = False):
    """Make ``cls`` a frozen value type (see the module); ``@frozen`` or ``@frozen(slots=..., kw_only=...)``."""

    def wrap(cls):
        own = dict(cls.__dict__)
        # a __slots__ class cannot tell a set field from an unset one without an exception (~1 us a
        # field at every construction): it keeps dataclasses' frozen __setattr__ and __delattr__
        made = dataclasses.dataclass(cls, frozen=slots, repr=False, eq=False, slots=slots, kw_only=kw_only)
        fields = dataclasses.fields(made)
        made.__value_eq__ = _getter([f.name for f in fields if f.compare])
        made.__value_hash__ = _getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
        made.__value_repr__ = tuple(f.name for f in fields if f.repr)
        if "__eq__" not in own:
            made.__eq__ = _eq
        if "__repr__" not in own:
            made.__repr__ = _repr
        if own.get("__hash__") is None:       # none of its own (a class that defines __eq__ has None)
            made.__hash__ = _hash
        if not slots:
            made.__setattr__ = _setattr
            made.__delattr__ = _delattr
        return made

    return wrap if cls is None else wrap(cls)


def _getter(names: list[str]):
    """A tuple of the named attributes (``attrgetter`` returns a bare value for one name)."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names)


def _eq(self, other):
    if other.__class__ is self.__class__:
        key = self.__class__.__value_eq__
        return key(self) == key(other)
    return NotImplemented


def _hash(self) -> int:
    return hash(self.__class__.__value_hash__(self))


def _repr(self) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__class__.__value_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _setattr(self, name: str, value) -> None:
    if name in self.__dict__ or name not in self.__class__.__dataclass_fields__:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)      # through a data descriptor, if the field has one


def _delattr(self, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
