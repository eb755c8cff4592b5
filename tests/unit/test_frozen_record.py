"""cnet.frozen_record.FrozenRecord behaves as the `@dataclass(frozen=True)` it stands for: the same
class declared both ways must construct, compare, hash, print, refuse changes, copy and pickle
alike, and fail alike on bad arguments (the same exception type)."""

import copy
import dataclasses
import pickle
import typing
from typing import ClassVar

import pytest

from cnet.frozen_record import FrozenRecord, field, replace


@dataclasses.dataclass(frozen=True)
class DataPort:
    host_ip: str
    host_port: int
    protocol: str = "tcp"
    labels: dict = dataclasses.field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.host_port < 0:
            raise ValueError("negative port")


class RecordPort(FrozenRecord):
    host_ip: str
    host_port: int
    protocol: str = "tcp"
    labels: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.host_port < 0:
            raise ValueError("negative port")


@dataclasses.dataclass(frozen=True)
class DataWide(DataPort):
    """A subclass adds fields after its base's (all with defaults, as a dataclass requires)."""

    mtu: int = 1500


class RecordWide(RecordPort):
    """A subclass adds fields after its base's (all with defaults, as a dataclass requires)."""

    mtu: int = 1500


ARGS = [
    ((), {"host_ip": "0.0.0.0", "host_port": 80}),
    (("0.0.0.0", 80), {}),
    (("127.0.0.1", 8080, "udp"), {}),
    (("::", 1), {"labels": {"a": "b"}, "aliases": ("x",)}),
    (("h", 2, "tcp", {"k": 1}, ("y",)), {}),
    (("h", 3), {"labels": None}),  # every field hashable: the record too
]
BAD_ARGS = [
    ((), {}),  # missing
    (("h",), {}),
    (("h", 1, "tcp", {}, (), "extra"), {}),  # too many
    (("h", 1), {"host_ip": "again"}),  # twice
    (("h", 1), {"nope": 1}),  # unknown
    (("h", -1), {}),  # __post_init__ refuses
]


def both(args, kwargs, pair=(DataPort, RecordPort)):
    return tuple(cls(*args, **kwargs) for cls in pair)


@pytest.mark.parametrize("args, kwargs", ARGS)
def test_construction_comparison_hash_and_repr(args, kwargs):
    data, record = both(args, kwargs)
    assert repr(record) == repr(data).replace("DataPort", "RecordPort")
    assert record == RecordPort(*args, **kwargs)
    assert record != data  # another class: never equal, as a dataclass
    assert (record == replace(record, host_port=record.host_port + 1)) is False
    if record.labels is None:
        assert hash(record) == hash(data) == hash(RecordPort(*args, **kwargs))
        assert {record, RecordPort(*args, **kwargs)} == {record}
    else:  # a dict field: unhashable, as the dataclass
        with pytest.raises(TypeError):
            hash(data)
        with pytest.raises(TypeError):
            hash(record)


@pytest.mark.parametrize("args, kwargs", BAD_ARGS)
def test_bad_arguments_fail_alike(args, kwargs):
    with pytest.raises(Exception) as from_data:
        DataPort(*args, **kwargs)
    with pytest.raises(Exception) as from_record:
        RecordPort(*args, **kwargs)
    assert type(from_record.value) is type(from_data.value)


def test_default_factories_make_a_new_value_each_time():
    a, b = RecordPort("h", 1), RecordPort("h", 2)
    assert a.labels == {} and a.labels is not b.labels
    assert "labels" not in vars(RecordPort)  # no shared default left on the class


def test_frozen():
    data, record = both(("h", 1), {})
    for target in (data, record):
        with pytest.raises(dataclasses.FrozenInstanceError):
            target.host_port = 2  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del target.host_ip  # type: ignore[misc]
    assert record.host_port == 1


def test_replace_as_dataclasses_replace():
    data, record = both(("h", 1), {"labels": {"a": "1"}})
    assert repr(replace(record, protocol="udp")) == repr(dataclasses.replace(data, protocol="udp")).replace(
        "DataPort", "RecordPort"
    )
    with pytest.raises(TypeError):
        replace(record, nope=1)
    with pytest.raises(ValueError):
        replace(record, host_port=-1)  # __post_init__ runs again


def test_copies_and_pickles():
    record = RecordWide("h", 1, labels={"a": "b"}, mtu=9000)
    for twin in (copy.copy(record), copy.deepcopy(record), pickle.loads(pickle.dumps(record))):
        assert twin == record and twin is not record
    assert copy.deepcopy(record).labels is not record.labels


def test_subclass_fields_follow_the_base():
    data, record = both(("h", 1), {"mtu": 1400}, (DataWide, RecordWide))
    assert repr(record) == repr(data).replace("DataWide", "RecordWide")
    assert RecordWide._fields == tuple(f.name for f in dataclasses.fields(DataWide))
    assert record != RecordPort("h", 1)


def test_a_required_field_after_a_default_is_refused():
    with pytest.raises(TypeError):

        class Wrong(FrozenRecord):
            a: int = 1
            b: int


class RecordPortTwin(FrozenRecord):
    """The same fields as RecordPort: still another class, never equal to it."""

    host_ip: str
    host_port: int
    protocol: str = "tcp"
    labels: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class OneField(FrozenRecord):
    name: str


def test_equality_needs_the_same_class():
    assert RecordPort("h", 1) != RecordPortTwin("h", 1)
    assert OneField("a") == OneField("a") != OneField("b")
    assert hash(OneField("a")) == hash(OneField("a")) and repr(OneField("a")) == "OneField(name='a')"


def test_class_variables_are_no_fields():
    class WithClassVars(FrozenRecord):
        kind: ClassVar[str] = "k"
        other: typing.ClassVar[int] = 1
        name: str

    assert WithClassVars._fields == ("name",)
    assert WithClassVars("x").kind == "k"


@dataclasses.dataclass(frozen=True)
class DataBase:
    a: int = 1
    b: int = 2


class RecordBase(FrozenRecord):
    a: int = 1
    b: int = 2


@pytest.mark.parametrize(
    "declare",
    [
        # A subclass adding a field without a default after its base's defaulted ones.
        lambda base: type("Sub", (base,), {"__annotations__": {"c": "int"}}),
        # A mutable default: a factory is required.
        lambda base: type("Mutable", (base,), {"__annotations__": {"b": "list"}, "b": []}),
    ],
    ids=["required-after-default", "mutable-default"],
)
def test_declarations_a_dataclass_refuses_are_refused(declare):
    with pytest.raises(Exception) as from_data:
        dataclasses.dataclass(frozen=True)(declare(DataBase))
    with pytest.raises(Exception) as from_record:
        declare(RecordBase)
    assert type(from_record.value) is type(from_data.value)


@pytest.mark.parametrize(
    "namespace",
    [{"__slots__": ("a",), "__annotations__": {"a": "int"}}, {"__annotations__": {"a": "InitVar[int]"}}],
    ids=["slots", "initvar"],
)
def test_what_it_does_not_support_is_refused(namespace):
    with pytest.raises(TypeError):
        type("Unsupported", (FrozenRecord,), namespace)


def test_match_by_position_and_copy_replace():
    match RecordPort("h", 1, "udp"):
        case RecordPort(ip, port, protocol):
            assert (ip, port, protocol) == ("h", 1, "udp")
        case _:
            raise AssertionError("no match")
    assert RecordPort("h", 1).__replace__(host_port=2) == RecordPort("h", 2)  # copy.replace, Python 3.13


def test_a_field_declared_again_keeps_its_inherited_default():
    data = dataclasses.dataclass(frozen=True)(type("Sub", (DataBase,), {"__annotations__": {"a": "int"}}))
    record = type("Sub", (RecordBase,), {"__annotations__": {"a": "int"}})
    assert (data().a, data(5).a, data(5).b) == (record().a, record(5).a, record(5).b) == (1, 5, 2)
