"""layers.value.frozen behaves as dataclasses.dataclass(frozen=True) for everything the house uses."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import FrozenInstanceError, field

import pytest

from layers.value import frozen


@frozen
class Plain:
    """doc"""

    a: int
    b: str = "x"
    c: tuple[str, ...] = ()


@frozen(slots=True)
class Slotted:
    """doc"""

    a: int
    b: str = "x"


@frozen(kw_only=True)
class Keywords:
    """doc"""

    a: int
    secret: str = field(default="", repr=False)
    note: str = field(default="", compare=False)
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@frozen
class Derived:
    """doc"""

    raw: str
    upper: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "upper", self.raw.upper())


@frozen
class Child(Plain):
    """doc"""

    d: int = 0


@frozen
class OwnEq:
    """doc"""

    a: int

    def __eq__(self, other):
        return isinstance(other, OwnEq) and abs(self.a) == abs(other.a)


@pytest.mark.parametrize("make", [lambda: Plain(1), lambda: Slotted(1), lambda: Keywords(a=1), lambda: Child(1)])
def test_fields_cannot_change_once_made(make):
    v = make()
    with pytest.raises(FrozenInstanceError):
        v.a = 2
    with pytest.raises(FrozenInstanceError):
        del v.a
    # not a field: refused, as frozen dataclasses refuse it (a slots one, CPython 3.11's own frozen
    # __setattr__, with a TypeError: its super() names the class before slots were added)
    with pytest.raises((FrozenInstanceError, TypeError)):
        v.later = 1
    assert v.a == 1 and not hasattr(v, "later")


def test_eq_hash_repr_as_dataclasses_make_them():
    @dataclasses.dataclass(frozen=True)
    class Ref:
        """doc"""

        a: int
        b: str = "x"
        c: tuple[str, ...] = ()

    assert Plain(1, "y", ("z",)) == Plain(1, "y", ("z",)) and Plain(1) != Plain(2)
    assert hash(Plain(1, "y")) == hash(Plain(1, "y"))
    assert repr(Plain(1, "y", ("z",))) == repr(Ref(1, "y", ("z",))).replace("Ref", "Plain").replace(
        "test_eq_hash_repr_as_dataclasses_make_them.<locals>.", "")
    assert Plain(1) != Ref(1) and Plain(1) != Child(1) and Plain(1) != (1, "x", ())
    assert {Plain(1), Plain(1), Slotted(1), Slotted(1)} == {Plain(1), Slotted(1)}
    assert repr(Slotted(3)) == "Slotted(a=3, b='x')"


def test_field_options_compare_hash_repr():
    a, b = Keywords(a=1, secret="s1", note="n1", extra={"k": 1}), Keywords(a=1, secret="s1", note="n2")
    assert a == b and hash(a) == hash(b)
    assert "s1" not in repr(a) and "note='n1'" in repr(a)
    assert Keywords(a=1, secret="s1") != Keywords(a=1, secret="s2")


def test_post_init_derived_fields_replace_pickle_copy():
    d = Derived("abc")
    assert d.upper == "ABC"
    with pytest.raises(FrozenInstanceError):
        d.upper = "x"
    r = dataclasses.replace(d, raw="q")
    assert r.upper == "Q" and d.raw == "abc"
    for v in (Plain(1, "y"), Slotted(2), Keywords(a=3, note="n"), d, Child(1, d=4)):
        assert pickle.loads(pickle.dumps(v)) == v
        assert copy.deepcopy(v) == v and copy.copy(v) == v
    assert [f.name for f in dataclasses.fields(Child)] == ["a", "b", "c", "d"]
    assert dataclasses.asdict(Child(1)) == {"a": 1, "b": "x", "c": (), "d": 0}


def test_a_class_keeps_its_own_eq_and_gets_a_field_hash():
    assert OwnEq(-1) == OwnEq(1)
    assert hash(OwnEq(2)) == hash(OwnEq(2))


def test_match_args():
    match Plain(5, "q"):
        case Plain(a, b):
            assert (a, b) == (5, "q")
        case _:
            pytest.fail("no match")
