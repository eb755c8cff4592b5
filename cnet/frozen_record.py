"""FrozenRecord: the base of the immutable value types every `cnet run` loads (the records of
cnet/records.py, commands, rules, ...). A subclass declares its fields as annotations, with
defaults, exactly as a `@dataclass(frozen=True)` would, and gets what that dataclass would have:
a constructor taking the fields by position or keyword, `__post_init__` called after it,
comparison and hashing by value (and by class), a repr naming the fields, no assignment after
construction (dataclasses.FrozenInstanceError), copies and pickles; `replace()` here is
`dataclasses.replace`. tests/unit/test_frozen_record.py checks each of these against a dataclass.

Why not @dataclass: it writes each class's methods as source text and compiles it while the
module is imported, about half a millisecond per class, more with many fields. For the value
types a `cnet run` loads, that was a larger share of its start-up than anything it runs in the
kernel (scripts/bench). These methods are written once, here, and read each class's fields from
the tuple __init_subclass__ records. Mutable dataclasses, and value types off that path, stay
dataclasses.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from typing import Any, ClassVar, TypeVar, dataclass_transform

R = TypeVar("R", bound="FrozenRecord")
T = TypeVar("T")


class _Factory:
    """A field's default made anew for each record (`field(default_factory=...)`)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A default built by `default_factory()` for each record, as dataclasses.field's."""
    return _Factory(default_factory)  # type: ignore[return-value]  # read by __init_subclass__


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class FrozenRecord:
    __slots__ = ()
    # Set on each subclass: its fields in declaration order (a base class's first), and the
    # defaults of those that have one.
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_set: ClassVar[frozenset[str]] = frozenset()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = inspect.get_annotations(cls)  # this class's own, as strings
        own = [name for name, kind in annotations.items() if not str(kind).startswith(("ClassVar", "typing.ClassVar"))]
        fields = [*cls._fields, *(name for name in own if name not in cls._fields)]
        defaults = dict(cls._defaults)
        for name in own:
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                if isinstance(defaults[name], _Factory):
                    delattr(cls, name)  # no shared default object on the class
            else:
                defaults.pop(name, None)
        for before, name in itertools.pairwise(fields):
            if before in defaults and name not in defaults:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        cls._fields, cls._field_set, cls._defaults = tuple(fields), frozenset(fields), defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields, defaults = cls._fields, cls._defaults
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} positional arguments but {len(args)} were given")
        values = dict(zip(fields, args, strict=False))  # fewer args than fields: the rest by keyword or default
        for name, value in kwargs.items():
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            values[name] = value
        if len(values) > len(fields) or not values.keys() <= cls._field_set:
            unexpected = sorted(values.keys() - cls._field_set)
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unexpected[0]!r}")
        setter = object.__setattr__
        for name in fields:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
                if isinstance(value, _Factory):
                    value = value.make()
            else:
                missing = [n for n in fields if n not in values and n not in defaults]
                raise TypeError(f"{cls.__name__}() missing required argument(s): {', '.join(map(repr, missing))}")
            setter(self, name, value)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """copy, deepcopy and pickle rebuild the record through its constructor."""
        return self.__class__, self._values()


def replace(record: R, **changes: Any) -> R:
    """A copy of `record` with some fields changed (dataclasses.replace)."""
    unknown = set(changes) - set(record._fields)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field(s) {sorted(unknown)}")
    values = {name: getattr(record, name) for name in record._fields}
    return record.__class__(**(values | changes))
