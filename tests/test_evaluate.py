"""The evaluation metrics on small generated tables whose answer is known."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sdmetrics.reports import QualityReport

from tabgen.errors import TabgenError
from tabgen.evaluation import evaluate
from tabgen.evaluation.alpha_precision import alpha_precision_beta_recall
from tabgen.evaluation.detection import detect, detection_score
from tabgen.evaluation.fidelity import sdmetrics_metadata, shape_and_trend
from tabgen.evaluation.prepare import normalise, resolve_schema

N = 2000


def correlated(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Strongly dependent columns of both kinds: every pair carries a trend."""
    rng = np.random.default_rng(seed)
    # Clipped, so that every sample shares the same range: sdmetrics' QualityReport bins each table on
    # its own range, and unequal ranges alone would cost a fresh sample several points of Trend.
    x = np.clip(rng.normal(size=n), -2.5, 2.5)
    y = np.clip(x + 0.3 * rng.normal(size=n), -2.5, 2.5)
    return pd.DataFrame({
        "x": x,
        "y": y,
        "group": np.where(x + 0.4 * rng.normal(size=n) > 0, "high", "low"),
        "level": np.select([y < -0.6, y < 0.6], ["a", "b"], "c"),
        "count": np.clip(rng.poisson(np.exp(0.6 * x + 1.5)), 0, 12).astype(float),
    })


def independent_marginals(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Each column resampled on its own: right marginals, no relationships."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.choice(df[c].to_numpy(), size=len(df)) for c in df.columns})


def fast(real, synthetic, **kwargs):
    return evaluate(real, synthetic, progress=False, **kwargs)


def test_independent_marginals_are_caught_by_trend_and_tree_c2st_but_not_shape():
    real = correlated()
    result = fast(real, independent_marginals(real), metrics=["fidelity", "detection"])
    assert result.shape_error < 4
    assert result.trend_error > 15
    assert result.c2st_xgboost.score < 0.2


def test_a_fresh_sample_of_the_same_generator_scores_near_perfect():
    result = fast(correlated(seed=0), correlated(seed=2), metrics=["fidelity", "detection", "alpha_precision"])
    assert result.shape_error < 4
    assert result.trend_error < 6
    assert result.c2st_logistic.score > 0.85
    assert result.c2st_xgboost.score > 0.85
    assert result.alpha_precision > 0.9


def test_a_sorted_real_table_does_not_inflate_c2st():
    # Folds cut from a sorted table would test on x-ranges absent from training, pull the AUC toward
    # (or below) 0.5 and flatter a mediocre generator.
    real = correlated()
    mediocre = correlated(seed=3)
    mediocre["x"] += 0.4  # a visible shift for the linear model, a broken link for the trees
    mediocre["y"] = mediocre["x"] + 0.8 * np.random.default_rng(4).normal(size=N)
    schema = resolve_schema(real, None)
    synthetic = normalise(mediocre, schema, "synthetic")
    shuffled = normalise(real, schema, "real")
    ordered = shuffled.sort_values("x").reset_index(drop=True)
    for classifier in ("logistic", "xgboost"):
        on_sorted = detect(ordered, synthetic, schema, classifier, max_rows=None)
        on_shuffled = detect(shuffled, synthetic, schema, classifier, max_rows=None)
        assert on_sorted.auc > 0.6
        assert abs(on_sorted.score - on_shuffled.score) < 0.1


def test_detection_rows_and_folds_are_reproducible():
    real, synthetic = correlated(500), correlated(500, seed=5)
    first = fast(real, synthetic, metrics=["detection"], seed=3)
    second = fast(real, synthetic, metrics=["detection"], seed=3)
    assert first.c2st_xgboost.fold_aucs == second.c2st_xgboost.fold_aucs


def test_detection_score_follows_tabsyn():
    assert detection_score(0.5) == 1.0
    assert detection_score(1.0) == 0.0
    assert detection_score(0.75) == pytest.approx(0.5)
    assert detection_score(0.45) == 1.0


def test_an_auc_far_below_chance_is_reported_not_hidden():
    # Exact copies: each real row's twin sits in the training folds with the other label, so trees
    # predict the wrong class for it.
    real = correlated(600)
    with pytest.warns(RuntimeWarning, match="far below 0.5"):
        result = fast(real, real.copy(), metrics=["detection"])
    assert result.c2st_xgboost.auc < 0.4
    assert any("far below 0.5" in note for note in result.notes)


def test_shape_and_trend_are_the_quality_report_of_tabsyn():
    real, synthetic = correlated(800), correlated(800, seed=1)
    synthetic["count"] = np.random.default_rng(0).permutation(synthetic["count"].to_numpy())
    schema = resolve_schema(real, None)
    real, synthetic = normalise(real, schema, "real"), normalise(synthetic, schema, "synthetic")
    ours = shape_and_trend(real, synthetic, schema)

    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"t": real}, {"t": synthetic}, {"tables": {"t": sdmetrics_metadata(schema)}}, verbose=False)
    scores = report.get_properties().set_index("Property")["Score"]
    assert ours.shape_error == pytest.approx(100 * (1 - scores["Column Shapes"]))
    assert ours.trend_error == pytest.approx(100 * (1 - scores["Column Pair Trends"]))
    assert len(ours.pair_trends) == 10  # every pair, for the heat map


def test_alpha_precision_and_beta_recall_are_high_for_the_same_distribution_and_low_for_a_shifted_one():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(1000, 3))
    same = alpha_precision_beta_recall(real, rng.normal(size=(1000, 3)))
    shifted = alpha_precision_beta_recall(real, rng.normal(size=(1000, 3)) + 3)
    assert same[0] > 0.9
    assert shifted[0] < 0.5 and shifted[1] < 0.1
    assert same[1] > shifted[1]


def test_ml_efficiency_classification_and_regression():
    real, holdout = correlated(1000), correlated(1000, seed=7)
    noise = independent_marginals(real)
    good = fast(real, correlated(1000, seed=8), holdout=holdout, target="group", metrics=["ml_efficiency"])
    bad = fast(real, noise, holdout=holdout, target="group", metrics=["ml_efficiency"])
    assert good.ml_efficiency.task == "binary classification"
    assert good.ml_efficiency.real > 0.8 and abs(good.ml_efficiency.gap) < 0.05
    assert bad.ml_efficiency.gap > 0.2
    regression = fast(real, noise, holdout=holdout, target="y", metrics=["ml_efficiency"])
    assert regression.ml_efficiency.metric == "rmse"
    assert regression.ml_efficiency.synthetic > regression.ml_efficiency.real
    multiclass = fast(real, correlated(1000, seed=8), holdout=holdout, target="level", metrics=["ml_efficiency"])
    assert multiclass.ml_efficiency.metric == "roc_auc_macro_ovr"


def test_privacy_sees_copies_and_fresh_samples_land_near_half():
    real, holdout = correlated(1000), correlated(1000, seed=9)
    fresh = fast(real, correlated(1000, seed=10), holdout=holdout, metrics=["privacy"])
    assert 0.4 < fresh.dcr_share < 0.6
    assert fresh.exact_copy_rate < 0.01  # only rows at the clipped extremes can coincide
    copied = fast(real, real.sample(500, random_state=0), holdout=holdout, metrics=["privacy"])
    assert copied.exact_copy_rate == 1.0
    assert copied.dcr_share > 0.95
    assert copied.dcr_overfitting_protection < 0.2


def test_the_membership_attack_finds_training_rows_in_copies_and_nothing_in_fresh_rows():
    real, holdout = correlated(1000), correlated(1000, seed=9)
    fresh = fast(real, correlated(1000, seed=10), holdout=holdout, metrics=["privacy"])
    assert abs(fresh.membership_auc - 0.5) < 0.06
    assert fresh.rows["membership candidates"] == 500  # half the holdout; its other half is the reference
    copied = fast(real, real.sample(500, random_state=0), holdout=holdout, metrics=["privacy"])
    assert copied.membership_auc > 0.7  # half the members were copied: those score highest
    assert "Membership inference AUC" in str(copied)
    tiny = fast(real, correlated(1000, seed=10), holdout=holdout.head(12), metrics=["privacy"])
    assert tiny.membership_auc is None and any("membership" in note for note in tiny.notes)


def with_gaps(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = df.copy()
    for column in df.columns:
        df.loc[rng.random(len(df)) < 0.1, column] = np.nan
    return df


def test_missing_values_everywhere_do_not_crash():
    real, holdout = with_gaps(correlated(600), 0), with_gaps(correlated(600, seed=1), 1)
    result = fast(real, with_gaps(correlated(600, seed=2), 2), holdout=holdout, target="group")
    headline = result.headline()
    assert all(value is not None and np.isfinite(value) for value in headline.values()), headline
    assert result.ml_efficiency is not None
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("columns", [["group", "level"], ["x", "y", "count"], ["x"], ["level"]])
def test_single_kind_and_single_column_tables(columns):
    real, holdout = correlated(400)[columns], correlated(400, seed=1)[columns]
    result = fast(real, correlated(400, seed=2)[columns], holdout=holdout)
    assert result.shape_error is not None
    assert result.c2st_logistic is not None and result.c2st_xgboost is not None
    assert result.dcr_share is not None and result.alpha_precision is not None
    if len(columns) == 1:
        assert result.trend_error is None
        assert any("Trend" in note for note in result.notes)


def test_absent_holdout_or_target_gives_none_and_a_note():
    real = correlated(300)
    no_holdout = fast(real, correlated(300, seed=1), target="group")
    assert no_holdout.ml_efficiency is None and no_holdout.dcr_share is None
    assert no_holdout.dcr_overfitting_protection is None
    assert no_holdout.exact_copy_rate is not None
    assert any("ML efficiency" in note and "holdout" in note for note in no_holdout.notes)
    assert any("DCR" in note and "holdout" in note for note in no_holdout.notes)
    no_target = fast(real, correlated(300, seed=1), holdout=correlated(300, seed=2), metrics=["ml_efficiency"])
    assert no_target.ml_efficiency is None
    assert any("target" in note for note in no_target.notes)


def test_identifier_and_extra_columns_are_each_named_in_a_note_of_their_own():
    real = correlated(300).assign(**{"Row ID": np.arange(300)})
    synthetic = correlated(300, seed=1).assign(**{"Row ID": np.arange(300) + 300, "extra": 1.0})
    notes = fast(real, synthetic, metrics=["fidelity"]).notes
    assert "synthetic column(s) ['extra'] are not in the real table and were ignored" in notes
    assert "identifier column(s) ['Row ID'] were not compared" in notes


def test_mistakes_name_the_culprit():
    real = correlated(100)
    with pytest.raises(TabgenError, match="'income'"):
        fast(real, real, target="income")
    with pytest.raises(TabgenError, match=r"synthetic table lacks column\(s\) \['level'\]"):
        fast(real, real.drop(columns=["level"]))
    with pytest.raises(TabgenError, match="'x'.*numerical"):
        fast(real, real.assign(x="oops"))
    with pytest.raises(TabgenError, match="unknown metric"):
        fast(real, real, metrics=["vibes"])


def mixed_dtypes(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "code": pd.array(rng.integers(1, 4, size=n), dtype="Int64"),
        "amount": pd.array(rng.integers(0, 5000, size=n), dtype="Int64"),
        "city": pd.array(rng.choice(["Lyon", "Oslo", "Kyiv"], size=n), dtype="string"),
        "tier": pd.Categorical(rng.choice(["gold", "silver"], size=n)),
        "ratio": rng.random(n),
    })
    frame.loc[rng.random(n) < 0.1, "code"] = pd.NA
    frame.loc[rng.random(n) < 0.1, "city"] = pd.NA
    frame.loc[rng.random(n) < 0.1, "amount"] = pd.NA
    return frame


def test_a_frame_and_its_csv_round_trip_score_the_same(tmp_path):
    frames = {name: mixed_dtypes(300, seed) for seed, name in enumerate(["real", "synthetic", "holdout"])}
    read_back = {}
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        read_back[name] = pd.read_csv(tmp_path / f"{name}.csv")
    assert read_back["real"]["code"].dtype == "float64"  # the round trip did change the dtypes

    def rounded(value):  # Int64 and float64 inputs may sum in another order: equal up to the last bits
        if isinstance(value, float):
            return round(value, 12)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return [rounded(v) for v in value] if isinstance(value, list) else value

    def scores(tables):
        return rounded(fast(tables["real"], tables["synthetic"], holdout=tables["holdout"], target="tier").to_dict())

    assert scores(frames) == scores(read_back)


def test_column_names_that_are_not_text():
    real = correlated(200)
    real.columns = range(len(real.columns))
    synthetic = correlated(200, seed=1)
    synthetic.columns = range(len(synthetic.columns))
    result = fast(real, synthetic, metrics=["fidelity"])
    assert set(result.column_shapes) == {str(i) for i in range(len(real.columns))}


def test_progress_goes_to_stderr_and_can_be_silenced(capsys):
    real = correlated(200)
    evaluate(real, correlated(200, seed=1), metrics=["fidelity"], progress=False)
    assert capsys.readouterr().err == ""


def test_result_table_and_dict():
    real = correlated(300)
    result = fast(real, correlated(300, seed=1), holdout=correlated(300, seed=2), target="group", floor=True)
    table = str(result)
    for label in ("Shape error", "Trend error", "C2ST xgboost", "DCR share", "real floor"):
        assert label in table
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["c2st_xgboost"]["auc"] == pytest.approx(result.c2st_xgboost.auc)
    assert set(result.floor) >= {"shape_error", "c2st_xgboost"}


def test_a_holdout_scores_the_rows_against_it_beside_the_floor():
    real, holdout = correlated(300), correlated(300, seed=2)
    result = fast(real, independent_marginals(real), holdout=holdout, metrics=["fidelity", "detection"])
    assert set(result.against_holdout) == {"shape_error", "trend_error", "c2st_logistic", "c2st_xgboost"}
    assert result.against_holdout["trend_error"] > 15 and result.floor["trend_error"] < 10
    assert "vs holdout" in str(result) and "real floor" in str(result)
    assert fast(real, holdout, holdout=holdout, metrics=["fidelity"], floor=False).floor is None


def test_c2st_reads_every_row_whatever_max_rows_says():
    real = correlated(300)
    result = fast(real, correlated(300, seed=1), metrics=["detection"], max_rows=50)
    assert result.c2st_xgboost.rows_per_table == 300
