"""Line protocol as exact strings (the way influxdb-client's tests/test_point.py pins it)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.errors import LineProtocolError
from analytics.sink.lineprotocol import Point, encode_point, format_time


def test_basic_point_sorted_tags_and_int_suffix():
    p = Point("footfall", {"site": "demo", "entrance": "north"}, {"entries": 12, "rate": 0.5},
              1700000000)
    assert encode_point(p) == "footfall,entrance=north,site=demo entries=12i,rate=0.5 1700000000"


def test_measurement_escaping_comma_space_not_equals():
    p = Point("my meas,ure=x", {}, {"v": 1.0}, 1)
    assert encode_point(p) == r"my\ meas\,ure=x v=1.0 1"


def test_tag_key_and_value_escaping():
    p = Point("m", {"tag key": "a,b=c d", "k=1": "x"}, {"v": 1}, 1)
    assert encode_point(p) == r"m,k\=1=x,tag\ key=a\,b\=c\ d v=1i 1"


def test_field_key_escaping_and_string_value_escaping():
    p = Point("m", {}, {"field key,1": 'say "hi" \\ there'}, 2)
    assert encode_point(p) == 'm field\\ key\\,1="say \\"hi\\" \\\\ there" 2'


def test_newline_tab_in_tag_value_escaped():
    p = Point("m", {"t": "a\nb\tc"}, {"v": True}, 3)
    assert encode_point(p) == r"m,t=a\nb\tc v=true 3"


def test_bool_false_and_negative_int():
    assert encode_point(Point("m", {}, {"a": False, "b": -7}, 0)) == "m a=false,b=-7i 0"


def test_empty_tag_values_dropped_and_no_timestamp():
    assert encode_point(Point("m", {"a": "", "b": "x"}, {"v": 2})) == "m,b=x v=2i"


def test_nan_and_inf_fields_dropped():
    p = Point("m", {}, {"a": math.nan, "b": math.inf, "c": 1.5}, 5)
    assert encode_point(p) == "m c=1.5 5"


def test_point_without_storable_fields_refused():
    with pytest.raises(LineProtocolError) as err:
        encode_point(Point("m", {"a": "b"}, {"x": math.nan}, 1))
    assert err.value.measurement == "m"


def test_comment_measurement_refused():
    with pytest.raises(LineProtocolError):
        encode_point(Point("#m", {}, {"v": 1}, 1))


def test_numpy_scalars():
    p = Point("m", {}, {"i": np.int64(4), "f": np.float32(0.5), "b": np.bool_(True)}, 1)
    assert encode_point(p) == "m b=true,f=0.5,i=4i 1"


@pytest.mark.parametrize("precision,expected", [
    ("s", "1700000000"), ("ms", "1700000000250"), ("us", "1700000000250000"),
    ("ns", "1700000000250000000")])
def test_precisions_float_time(precision, expected):
    assert format_time(1700000000.25, precision) == expected


@pytest.mark.parametrize("precision,expected", [
    ("s", "1700000001"), ("ms", "1700000001000"), ("ns", "1700000001000000000")])
def test_precisions_int_time_exact(precision, expected):
    assert encode_point(Point("m", {}, {"v": 1}, 1700000001), precision) == f"m v=1i {expected}"


def test_bad_precision():
    with pytest.raises(ValueError):
        format_time(1.0, "h")


def test_float_repr_round_trips():
    x = 0.1 + 0.2
    line = encode_point(Point("m", {}, {"v": x}, 1))
    assert float(line.split("=")[1].split(" ")[0]) == x
