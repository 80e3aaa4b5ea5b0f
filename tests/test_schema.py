import numpy as np
import pandas as pd
import pytest

from tabgen import Schema, TabgenError, infer_schema


def test_inference_rules(mixed_frame):
    schema = infer_schema(mixed_frame)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"group": "categorical", "x": "numerical", "count": "numerical", "flag": "categorical",
                     "income": "numerical", "city": "categorical"}
    assert schema["count"].is_integer and schema["income"].is_integer and not schema["x"].is_integer
    assert schema["x"].decimals == 2
    assert schema["income"].missing_rate > 0.1
    assert schema["city"].categories == ["Lima", "Oslo", "Pune"]
    assert schema["x"].min == mixed_frame["x"].min()


def test_integers_with_few_levels_are_categorical():
    df = pd.DataFrame({"year": [2007, 2008, 2009] * 10, "n": np.arange(30)})
    schema = infer_schema(df)
    assert schema["year"].kind == "categorical" and schema["n"].kind == "numerical"


def test_overrides_win():
    df = pd.DataFrame({"year": [2007, 2008, 2009] * 10, "code": np.arange(30)})
    schema = infer_schema(df, categorical=["code"], numerical=["year"])
    assert schema["year"].kind == "numerical" and schema["code"].kind == "categorical"


def test_round_trip_through_dict(mixed_frame):
    schema = infer_schema(mixed_frame)
    assert Schema.from_dict(schema.to_dict()) == schema


@pytest.mark.parametrize(
    "df, message",
    [
        (pd.DataFrame(), "no columns"),
        (pd.DataFrame({"a": []}), "no rows"),
        (pd.DataFrame({"a": [1, 2], "b": [np.nan, np.nan]}), "'b'"),
        (pd.DataFrame({"a": [1.0, np.inf]}), "infinite"),
    ],
)
def test_bad_frames_are_refused_by_name(df, message):
    with pytest.raises(TabgenError, match=message):
        infer_schema(df)


def test_unknown_override_and_text_forced_numerical():
    df = pd.DataFrame({"a": ["1", "x", "2"]})
    with pytest.raises(TabgenError, match="'nope'"):
        infer_schema(df, categorical=["nope"])
    with pytest.raises(TabgenError, match="'a'.*text"):
        infer_schema(df, numerical=["a"])
