import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tabgen import Synthesizer, TabgenError, TabgenWarning
from tabgen.fit_plan import CALIBRATION_BUDGET_SHARE, FitPlan, PhaseLimits

from conftest import fast_config


@pytest.fixture(scope="module")
def fitted():
    from conftest import make_mixed_frame

    df = make_mixed_frame()
    return df, Synthesizer(config=fast_config(), progress=False).fit(df)


def test_sample_has_same_columns_dtypes_and_only_seen_values(fitted):
    df, syn = fitted
    fake = syn.sample(500)
    assert len(fake) == 500
    assert list(fake.columns) == list(df.columns)
    assert (fake.dtypes == df.dtypes).all()
    assert set(fake["group"]) <= set(df["group"])
    assert set(fake["city"].dropna()) <= set(df["city"].dropna())
    assert (fake["count"] == fake["count"].round()).all()
    assert fake["x"].between(df["x"].min(), df["x"].max()).all()
    assert (fake["x"] == fake["x"].round(2)).all()
    assert syn.schema_["income"].has_missing


def test_learned_state_is_underscored_and_params_unchanged(fitted):
    df, syn = fitted
    assert syn.get_params() == Synthesizer(config=syn.config, seed=0, progress=False).get_params()
    assert syn.schema_.names == list(df.columns) and syn.n_rows_ == len(df) and syn.fit_seconds_ > 0
    assert syn.codec_.layout.n_tokens * syn.codec_.vae.d_token == syn.codec_.latent_dim
    assert not [name for name in vars(Synthesizer()) if name.endswith("_")]  # nothing learned before fit


def test_get_params_and_set_params_make_clone_work(fitted):
    from sklearn.base import clone

    _, syn = fitted
    copy = clone(syn)
    assert copy.get_params() == syn.get_params() and not hasattr(copy, "model_")
    assert copy.set_params(seed=7).seed == 7
    with pytest.raises(TabgenError, match="no parameter 'width'"):
        copy.set_params(width=3)


def test_an_edited_schema_sets_the_column_kinds(mixed_frame):
    from tabgen import infer_schema

    schema = infer_schema(mixed_frame)
    name = schema.numerical[0].name
    schema[name].kind = "categorical"
    syn = Synthesizer(schema=schema, config=fast_config(), progress=False).fit(mixed_frame.round({name: 0}))
    assert syn.schema_[name].kind == "categorical"
    with pytest.raises(TabgenError, match="not both"):
        Synthesizer(schema=schema, categorical=[name]).fit(mixed_frame)
    with pytest.raises(TabgenError, match="are not the table's"):
        Synthesizer(schema=schema).fit(mixed_frame.drop(columns=name))


def test_sample_takes_its_steps_and_defaults_to_the_tables_rows(fitted):
    df, syn = fitted
    assert len(syn.sample(progress=False)) == len(df)
    assert not syn.sample(20, steps=3, seed=1).equals(syn.sample(20, seed=1))
    with pytest.raises(TabgenError, match="steps must be a positive integer"):
        syn.sample(5, steps=0)


def test_sampling_is_reproducible_and_batched(fitted):
    _, syn = fitted
    a = syn.sample(50, seed=3)
    pd.testing.assert_frame_equal(a, syn.sample(50, seed=3))
    assert not syn.sample(50, seed=4).equals(a)
    syn.config_.sampler.batch_size = 7
    try:
        batches = list(syn.sample_batches(20, seed=1))
    finally:
        syn.config_.sampler.batch_size = 10_000
    assert [len(x) for x in batches] == [7, 7, 6]


def test_fit_is_reproducible_with_a_seed():
    from conftest import make_mixed_frame

    df = make_mixed_frame(120)
    a = Synthesizer(config=fast_config(), progress=False, seed=5).fit(df).sample(30)
    b = Synthesizer(config=fast_config(), progress=False, seed=5).fit(df).sample(30)
    pd.testing.assert_frame_equal(a, b)


def test_fit_leaves_global_random_state_alone():
    from conftest import make_mixed_frame

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame(60))
    assert torch.equal(torch.rand(1), expected)


def test_save_and_load_give_the_same_rows(fitted, tmp_path):
    _, syn = fitted
    path = tmp_path / "m.tabgen"
    syn.save(path)
    loaded = Synthesizer.load(path, progress=False)
    pd.testing.assert_frame_equal(loaded.sample(40, seed=9), syn.sample(40, seed=9))
    assert loaded.schema_ == syn.schema_
    assert loaded.n_rows_ == syn.n_rows_


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": np.random.default_rng(0).choice(list("xyz"), 80),
                      "b": np.random.default_rng(1).choice(list("pq"), 80)}),
        pd.DataFrame({"u": np.random.default_rng(0).normal(size=80), "v": np.random.default_rng(1).gamma(2.0, size=80)}),
        pd.DataFrame({"only": np.random.default_rng(0).normal(size=5)}),
    ],
    ids=["categorical-only", "numerical-only", "one-column-five-rows"],
)
def test_degenerate_tables_work(frame):
    fake = Synthesizer(config=fast_config(), progress=False).fit(frame).sample(10)
    assert list(fake.columns) == list(frame.columns) and len(fake) == 10


def test_time_budget_limits_training():
    from conftest import make_mixed_frame

    config = fast_config()
    config.vae.max_steps = config.diffusion.max_steps = 10**6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)  # a slow machine gets few epochs in 2 s, and a warning
        syn = Synthesizer(config=config, time_budget=2, device="cpu", progress=False).fit(make_mixed_frame(100))
    assert syn.vae_result_.stopped_by in ("time budget", "no improvement")
    assert syn.diffusion_result_.stopped_by in ("time budget", "no improvement")


def test_a_fit_cut_short_by_its_budget_warns():
    from tabgen.fitting import MIN_EPOCHS_BEFORE_WARNING, warn_if_cut_short
    from tabgen.train import TrainResult

    enough = TrainResult(epochs=MIN_EPOCHS_BEFORE_WARNING, stopped_by="time budget")
    with pytest.warns(TabgenWarning, match="allowed only 3 epoch.s. of diffusion training"):
        warn_if_cut_short(enough, TrainResult(epochs=3, steps=60, stopped_by="time budget"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_cut_short(enough, TrainResult(epochs=3, stopped_by="no improvement"))


def test_a_deadline_ends_an_epoch_between_steps():
    import time

    from tabgen.batches import TensorRows
    from tabgen.train import _Loop

    loop = _Loop("x", n_rows=100, batch_size=10, max_epochs=5, limits=PhaseLimits(time.monotonic() + 0.2, None),
                 patience=5, device=torch.device("cpu"), progress=False, rows=TensorRows((torch.zeros(100, 1),)))
    assert loop.steps_per_epoch == 20
    for _ in loop.batches():
        time.sleep(0.1)  # a step of a very wide table
    assert 1 <= loop.epoch_steps < loop.steps_per_epoch
    assert loop.end_epoch(1.0, torch.nn.Linear(1, 1))
    assert loop.result.stopped_by == "time budget" and loop.result.steps == loop.epoch_steps


def test_time_budget_replaces_the_denoisers_step_limit():
    from conftest import make_mixed_frame

    config = fast_config()
    config.diffusion.patience = 10**6
    frame = make_mixed_frame(100)
    plan = FitPlan(frame, time_budget=3)
    assert plan.diffusion_limits(config) == PhaseLimits(plan.deadline - CALIBRATION_BUDGET_SHARE * 3, None)
    assert FitPlan(frame).diffusion_limits(config) == PhaseLimits(None, config.diffusion.max_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TabgenWarning)
        syn = Synthesizer(config=config, time_budget=3, progress=False).fit(frame)
    assert syn.diffusion_result_.stopped_by == "time budget"


def test_patience_waits_for_half_the_annealed_schedule():
    from conftest import make_mixed_frame

    config = fast_config()
    config.diffusion.max_steps, config.diffusion.patience = 400, 1
    r = Synthesizer(config=config, progress=False).fit(make_mixed_frame(100)).diffusion_result_
    assert r.steps >= 200
    assert r.stopped_by in ("max steps", "no improvement")


def test_patience_applies_after_many_passes_over_a_small_table(monkeypatch):
    import tabgen.train

    from conftest import make_mixed_frame

    # Each step is a pass over these 90 training rows: after 40 the table is seen often enough that a
    # plateau is real, long before half of the 4,000-step schedule.
    monkeypatch.setattr(tabgen.train, "EARLY_STOP_AFTER_PASSES", 40)
    config = fast_config()
    config.diffusion.max_steps, config.diffusion.patience = 4000, 1
    r = Synthesizer(config=config, progress=False).fit(make_mixed_frame(100)).diffusion_result_
    assert r.stopped_by == "no improvement"
    assert 40 <= r.steps < 2000


def test_best_epoch_is_kept():
    from conftest import make_mixed_frame

    syn = Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame(100))
    r = syn.diffusion_result_
    assert r.best_loss == min(r.history)


@pytest.mark.parametrize("n", [0, -5, 2.5, "10", True])
def test_bad_row_counts_are_refused(fitted, n):
    with pytest.raises(TabgenError, match="positive integer"):
        fitted[1].sample(n)


def test_unfitted_and_bad_arguments():
    with pytest.raises(TabgenError, match="not fitted"):
        Synthesizer().sample(3)
    with pytest.raises(TabgenError, match="time_budget"):
        Synthesizer(time_budget=0).fit(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(TabgenError, match="CUDA is not available|unknown device"):
        Synthesizer(device="cuda" if not torch.cuda.is_available() else "nonsense").fit(pd.DataFrame({"a": [1.0, 2.0]}))


def test_a_numerical_column_with_few_values_gives_back_only_those_values(tmp_path):
    from tabgen.io.modelfile import load_model, save_model

    rng = np.random.default_rng(0)
    # Twelve values: more than schema inference makes categorical, few enough to decode as a choice.
    values = np.arange(1, 13)
    df = pd.DataFrame({"rooms": rng.choice(values, 300, p=np.r_[0.01, np.full(11, 0.09)]),
                       "price": rng.gamma(2.0, 10.0, 300).round(2), "kind": rng.choice(["a", "b"], 300)})
    syn = Synthesizer(config=fast_config(rare_value_rows=0), progress=False, seed=0).fit(df)
    assert [len(levels) for levels in syn.codec_.layout.value_levels] == [12, 0]
    assert set(syn.sample(300, seed=1)["rooms"]) <= set(values)

    path = tmp_path / "m.tabgen"
    syn.save(path)
    pd.testing.assert_frame_equal(Synthesizer.load(path, progress=False).sample(40, seed=2), syn.sample(40, seed=2))
    # A file written before discrete columns existed has no levels, and every column is regressed.
    continuous = Synthesizer(config=fast_config(), progress=False).fit(df.drop(columns="rooms"))
    continuous.save(path)
    header, tensors = load_model(path)
    del header["layout"]
    save_model(path, header, tensors)
    old = Synthesizer.load(path, progress=False)
    pd.testing.assert_frame_equal(old.sample(40, seed=2), continuous.sample(40, seed=2))


def test_a_small_table_trains_a_narrower_denoiser_kept_in_the_model_file(mixed_frame, tmp_path):
    from tabgen.config import MIN_ROWS_WIDTH, width_for_rows

    widths = [width_for_rows(256, n, 32) for n in (1, 200, 500, 1000, 2000, 5000, 8192, 10**6)]
    assert widths == sorted(widths) and widths[0] == MIN_ROWS_WIDTH and widths[-2:] == [256] * 2
    assert widths[2:5] == [16, 32, 64] and all(w % 8 == 0 for w in widths)
    assert width_for_rows(256, 10, 0) == 256 and width_for_rows(1024, 10**6, 32) == 1024
    config = fast_config()
    config.diffusion.rows_per_unit = 32
    syn = Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame)
    assert syn.config_.diffusion.width == MIN_ROWS_WIDTH and config.diffusion.width == 64
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    assert loaded.config_.diffusion.width == MIN_ROWS_WIDTH
    pd.testing.assert_frame_equal(loaded.sample(30, seed=1), syn.sample(30, seed=1))


def test_token_width_is_chosen_per_table_and_kept_in_the_model_file(mixed_frame, tmp_path):
    from tabgen.config import auto_token_width

    assert [auto_token_width(n - n // 2, n // 2, 256) for n in (1, 14, 21, 64, 300)] == [4, 12, 12, 4, 4]
    assert auto_token_width(20, 20, 256) == 6
    assert auto_token_width(10, 1, 256) == 4  # mostly numerical: TabSyn's width
    assert auto_token_width(0, 1, 256) == 12
    config = fast_config()
    assert config.for_table(10, [2] * 10) is config  # a width given is kept
    config.vae.d_token = None
    syn = Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame)
    # Six columns, one with gaps (its missing-value flag is a token too), a width-64 denoiser: 64 // 7.
    assert syn.config_.vae.d_token == syn.codec_.vae.d_token == 9 and config.vae.d_token is None
    syn.save(tmp_path / "m.tabgen")
    loaded = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    pd.testing.assert_frame_equal(loaded.sample(30, seed=1), syn.sample(30, seed=1))


def test_a_file_from_before_the_narrow_noise_embedding_loads(mixed_frame, tmp_path):
    from tabgen.io.modelfile import load_model, save_model

    config = fast_config()
    config.diffusion.noise_channels = config.diffusion.width  # as every denoiser was built then
    syn = Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame)
    syn.save(tmp_path / "m.tabgen")
    header, tensors = load_model(tmp_path / "m.tabgen")
    del header["config"]["diffusion"]["noise_channels"]
    save_model(tmp_path / "m.tabgen", header, tensors)
    old = Synthesizer.load(tmp_path / "m.tabgen", progress=False)
    pd.testing.assert_frame_equal(old.sample(30, seed=1), syn.sample(30, seed=1))


def test_one_row_fits_with_only_tabgens_warning():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        syn = Synthesizer(config=fast_config(rare_value_rows=0), progress=False, seed=0)
        syn.fit(pd.DataFrame({"a": [1.5], "b": ["x"]}))
    assert [str(w.message).split(":")[0] for w in caught] == ["the table has only 1 row"]
    assert syn.sample(3)["b"].tolist() == ["x"] * 3
