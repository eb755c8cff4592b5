"""FrozenRecord: the base of the immutable value types every `cnet run` loads (the records of
cnet/records.py, commands, rules, ...). A subclass declares its fields as annotations, with
defaults, exactly as a `@dataclass(frozen=True)` would, and gets what that dataclass would have:
a constructor taking the fields by position or keyword, `__post_init__` called after it,
comparison and hashing by value (and by class), a repr naming the fields, no assignment after
construction (dataclasses.FrozenInstanceError), `match` by position, copies and pickles.
`replace()` here is `dataclasses.replace` (and mypy checks its calls as that one's).
tests/unit/test_frozen_record.py checks each of these against a dataclass.

Why not @dataclass: it writes each class's methods as source text and compiles it while the
module is imported, a cost per class that grows with its fields. For the value types a `cnet run`
loads, that was a larger share of its start-up than anything it runs in the kernel
(scripts/bench). These methods are written once, here, and read each class's fields from what
__init_subclass__ records. Mutable dataclasses, and value types off that path, stay dataclasses.

What a subclass may not do, unlike a dataclass: define `__slots__` (the fields live in the
instance's __dict__), inherit fields from more than one base, declare an `InitVar`. And the
functions of the dataclasses module (fields, asdict, replace, ...) do not apply to it, although
mypy, told by `dataclass_transform` that these are dataclasses, would accept them: use the
`replace()` below, and `_fields`.
"""

from __future__ import annotations

import inspect
import itertools
import operator
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

R = TypeVar("R", bound="FrozenRecord")
T = TypeVar("T")
_NO_DEFAULT = object()


class _Factory:
    """A field's default made anew for each record (`field(default_factory=...)`)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A default built by `default_factory()` for each record, as dataclasses.field's."""
    return _Factory(default_factory)  # type: ignore[return-value]  # read by __init_subclass__


def _annotation_name(kind: object) -> str:
    """`ClassVar` for "ClassVar[int]", "typing.ClassVar[int]", "t.ClassVar" (the annotations are
    strings: the modules use `from __future__ import annotations`)."""
    return str(kind).split("[", 1)[0].rsplit(".", 1)[-1].strip()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class FrozenRecord:
    __slots__ = ()
    # Set on each subclass by __init_subclass__: its fields in declaration order (its base's
    # first), the plain defaults and the default factories of those that have one, the values
    # of a record as a tuple, and its __post_init__ (None without one).
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_set: ClassVar[frozenset[str]] = frozenset()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Callable[[], Any]]] = {}
    _values_of: ClassVar[Callable[[Any], tuple[Any, ...]]]
    _post_init: ClassVar[Callable[[Any], None] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__slots__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: a FrozenRecord keeps its fields in __dict__, without __slots__")
        own = []
        for name, kind in inspect.get_annotations(cls).items():  # this class's own, as strings
            if _annotation_name(kind) == "InitVar":
                raise TypeError(f"{cls.__name__}.{name}: InitVar is not supported")
            if _annotation_name(kind) != "ClassVar":
                own.append(name)
        fields = [*cls._fields, *(name for name in own if name not in cls._fields)]
        defaults, factories = dict(cls._defaults), dict(cls._factories)
        for name in own:
            defaults.pop(name, None)
            factories.pop(name, None)
            # As a dataclass: a field declared again without a value keeps an inherited plain default.
            default = getattr(cls, name, _NO_DEFAULT)
            if default is _NO_DEFAULT:
                continue
            if isinstance(default, _Factory):
                factories[name] = default.make
                delattr(cls, name)  # no shared default object on the class (nor inherited)
            elif default.__class__.__hash__ is None:  # as dataclasses refuses list, dict, set...
                raise ValueError(
                    f"mutable default {type(default)} for field {name} is not allowed: use default_factory"
                )
            else:
                defaults[name] = default
        for before, name in itertools.pairwise(fields):
            if (before in defaults or before in factories) and name not in defaults and name not in factories:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        cls._fields, cls._field_set = tuple(fields), frozenset(fields)
        cls._defaults, cls._factories = defaults, factories
        if len(fields) > 1:
            cls._values_of = operator.attrgetter(*fields)
        else:  # attrgetter of one name gives the value itself, not a tuple (and of none, nothing)
            cls._values_of = staticmethod(lambda record: tuple(getattr(record, name) for name in fields))
        cls._post_init = getattr(cls, "__post_init__", None)
        setattr(cls, "__match_args__", tuple(fields))  # noqa: B010  # mypy refuses the plain assignment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if args:
            if len(args) > len(cls._fields):
                raise TypeError(
                    f"{cls.__name__}() takes {len(cls._fields)} positional arguments but {len(args)} were given"
                )
            for name, value in zip(cls._fields, args, strict=False):  # the rest by keyword or default
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
        values = cls._defaults | kwargs
        for name, make in cls._factories.items():
            if name not in values:
                values[name] = make()
        if values.keys() != cls._field_set:
            unexpected = sorted(values.keys() - cls._field_set)
            if unexpected:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unexpected[0]!r}")
            missing = [name for name in cls._fields if name not in values]
            raise TypeError(f"{cls.__name__}() missing required argument(s): {', '.join(map(repr, missing))}")
        self.__dict__.update(values)  # past __setattr__, which refuses every assignment
        if cls._post_init is not None:
            cls._post_init(self)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return type(self)._values_of(self) == type(self)._values_of(other)

    def __hash__(self) -> int:
        return hash(type(self)._values_of(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """copy, deepcopy and pickle rebuild the record through its constructor."""
        return self.__class__, type(self)._values_of(self)

    def __replace__(self: R, **changes: Any) -> R:
        """copy.replace (Python 3.13 and later)."""
        return _replace(self, **changes)


def _replace(record: R, **changes: Any) -> R:
    values = {name: getattr(record, name) for name in record._fields}
    return record.__class__(**(values | changes))


if TYPE_CHECKING:
    # For mypy, which takes the subclasses for dataclasses: it checks the changes' names and types.
    from dataclasses import replace as replace
else:

    def replace(record, **changes):
        """A copy of `record` with some fields changed (dataclasses.replace)."""
        return _replace(record, **changes)
