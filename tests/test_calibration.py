import numpy as np
import pandas as pd
import pytest
import torch

import tabgen.calibration as calibration_module
from tabgen import Synthesizer
from tabgen.calibration import (
    BIAS_TOLERANCE,
    Calibration,
    argmax_bias,
    chow_liu_pairs,
    drawn_bias,
    fit_calibration,
    noisy_table_counts,
    score_parents,
)
from tabgen.layout import TokenLayout
from tabgen.vae import IGNORED

from conftest import fast_config


def _shares(classes: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(classes, minlength=k).double() / len(classes)


@pytest.mark.parametrize("k", [2, 5, 42])
def test_argmax_bias_gives_each_class_its_share_even_from_confident_logits(k):
    g = torch.Generator().manual_seed(k)
    logits = 20 * torch.randn(8000, k, generator=g, dtype=torch.float64)  # margins as a decoder's
    shares = torch.distributions.Dirichlet(torch.full((k,), 0.5)).sample().double()
    bias = argmax_bias(logits, shares)
    decoded = _shares((logits + bias).argmax(-1), k)
    assert 0.5 * (decoded - shares).abs().sum() < BIAS_TOLERANCE + k / 8000
    # Within a class the order of rows is the logits': the bias is one number per class.
    assert torch.equal((logits + bias).argmax(-1), (logits + bias + 3.0).argmax(-1))


def test_drawn_bias_gives_each_class_its_share_on_average():
    logits = 3 * torch.randn(5000, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shares = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
    drawn = torch.softmax(logits + drawn_bias(logits, shares), -1).mean(0)
    assert 0.5 * (drawn - shares).abs().sum() < BIAS_TOLERANCE


def test_chow_liu_pairs_link_dependent_columns_each_parent_first_and_leave_independent_ones_out():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 3, (5000,), generator=g)
    b = (a + (torch.rand(5000, generator=g) < 0.1).long()) % 3
    c = torch.randint(0, 4, (5000,), generator=g)  # independent of a and b
    d = c * 2 + torch.randint(0, 2, (5000,), generator=g)  # 8 classes: its chance information with a is removed
    assert chow_liu_pairs(torch.stack([a, b, c, d], 1), [3, 3, 4, 8]) == [(1, 0), (2, 3)]
    assert chow_liu_pairs(a[:, None], [3]) == []


@pytest.mark.parametrize("private", [False, True])
def test_pair_biases_give_a_child_its_tables_shares_given_its_parent(private):
    # The model's child ignores its parent; in the table the child equals the parent in 90 % of rows.
    g = torch.Generator().manual_seed(0)
    n = 8000
    logits = [3 * torch.randn(n, 2, generator=g, dtype=torch.float64) for _ in range(2)]
    parent = torch.randint(0, 2, (n,), generator=g)
    child = torch.where(torch.rand(n, generator=g) < 0.9, parent, 1 - parent)
    classes = torch.stack([parent, child], 1)
    if private:  # a private fit reads no row, only the counts with noise
        torch.manual_seed(0)
        counts = noisy_table_counts(classes, [2, 2], 2, noise=5.0)
        calibration = fit_calibration(torch.zeros(n, 0), logits, None, TokenLayout(0, (2, 2)), counts=counts)
    else:
        calibration = fit_calibration(torch.zeros(n, 0), logits, classes, TokenLayout(0, (2, 2)))
    assert calibration.pairs in ([(1, 0)], [(0, 1)])
    fresh = [3 * torch.randn(n, 2, generator=g, dtype=torch.float64) for _ in range(2)]
    decoded = [lg.argmax(-1) for lg in calibration.shift(fresh)]
    assert abs(float((decoded[0] == decoded[1]).double().mean()) - 0.9) < 0.03
    assert all(abs(float(d.double().mean()) - 0.5) < 0.03 for d in decoded)  # the marginals stay the table's


def test_noisy_counts_are_the_tables_without_noise_and_leave_out_missing_cells_and_wide_pairs(monkeypatch):
    classes = torch.tensor([[0, 1, 0], [0, IGNORED, 1], [2, 1, 1], [0, 0, 0]])
    counts = noisy_table_counts(classes, [3, 2, 2], 2, noise=0.0)
    assert [c.tolist() for c in counts.marginals] == [[3, 0, 1], [1, 2], [2, 2]]
    assert list(counts.joints) == [(0, 1)]  # pairs among the first two heads only
    assert counts.joint(0, 1).tolist() == [[1, 1], [0, 0], [0, 1]] and torch.equal(counts.joint(1, 0), counts.joint(0, 1).T)
    monkeypatch.setattr(calibration_module, "MAX_PRIVATE_PAIR_CELLS", 5)
    wide = noisy_table_counts(classes, [3, 2, 2], 2, noise=1.0)
    # Each table released adds to the sensitivity: three marginals, no pair table.
    assert wide.joints == {} and wide.noise_std == pytest.approx(3**0.5)
    assert all(bool((c >= 0).all()) for c in wide.marginals)  # noise never makes a count negative


def test_score_parents_are_the_columns_a_number_depends_on_jointly(monkeypatch):
    g = torch.Generator().manual_seed(0)
    n = 6000
    classes = torch.randint(0, 3, (n, 3), generator=g)
    scores = classes[:, 2] + 2 * classes[:, 0] + 0.3 * torch.randn(n, generator=g)
    assert score_parents(scores, classes, [3, 3, 3]) == (0, 2)
    assert score_parents(torch.randn(n, generator=g), classes, [3, 3, 3]) == ()  # independent of all
    scores[::2] = torch.nan  # only regressed cells count
    assert score_parents(scores, classes, [3, 3, 3]) == (0, 2)
    monkeypatch.setattr(calibration_module, "SCORE_MAX_CLASSES", 8)
    assert score_parents(scores, classes, [3, 3, 3]) == (0,)  # the pair's 9 joint classes are too many


def test_conditional_scores_give_a_number_the_tables_distribution_given_its_parent():
    # The model's number ignores the group; in the table its mean is -1 or +1 by group.
    g = torch.Generator().manual_seed(0)
    n = 8000

    def model_rows():
        return torch.randn(n, 1, generator=g), [3 * torch.randn(n, 2, generator=g, dtype=torch.float64)]

    group = torch.randint(0, 2, (n,), generator=g)
    table = (2 * group - 1 + 0.5 * torch.randn(n, generator=g))[:, None].double()
    x_num, logits = model_rows()
    calibration = fit_calibration(x_num, logits, group[:, None], TokenLayout(1, (logits[0].shape[1],)), real_scores=table)
    assert calibration.conditional_scores[0].parents == (0,)
    x_num, logits = model_rows()
    decoded = calibration.shift(logits)[0].argmax(-1).numpy()
    mapped = calibration.scores(x_num.double().numpy(), decoded[:, None])[:, 0]
    for k, mean in ((0, -1), (1, 1)):
        assert abs(mapped[decoded == k].mean() - mean) < 0.05 and abs(mapped[decoded == k].std() - 0.5) < 0.05
        order = np.argsort(x_num[decoded == k, 0].numpy())
        assert (np.diff(mapped[decoded == k][order]) >= 0).all()  # within a group, ranks stay the model's
    state = calibration.state_tensors()
    loaded = Calibration.from_state(state, TokenLayout(1, (1,)))
    assert np.array_equal(loaded.scores(x_num.double().numpy(), decoded[:, None])[:, 0], mapped)
    older = Calibration.from_state({k: v for k, v in state.items() if not k.startswith("given.")}, TokenLayout(1, (1,)))
    assert older.conditional_scores == [None]  # a file from before the conditional maps


def test_fit_calibration_maps_scores_to_standard_normal_where_values_are_observed():
    g = torch.Generator().manual_seed(0)
    n = 4000
    x_num = torch.stack([0.5 * torch.randn(n, generator=g) + 1.0, torch.randn(n, generator=g), torch.randn(n, generator=g)], 1)
    gap_logits = torch.stack([torch.zeros(n), x_num[:, 0] - 1.0], 1)  # high scores come out "missing"
    real = torch.stack([torch.randint(0, 2, (n,), generator=g), torch.full((n,), IGNORED)], 1)
    layout = TokenLayout(3, (), gappy=(0,), value_levels=((), (0.0, 1.0, 2.0), ()))
    calibration = fit_calibration(x_num, [gap_logits, torch.zeros(n, 3)], real, layout)
    assert [len(q) > 0 for q in calibration.score_quantiles] == [True, False, True]
    assert calibration.logit_bias[1].abs().max() == 0  # a head with no table cells keeps its logits
    observed = ((gap_logits + calibration.logit_bias[0]).argmax(-1) == 0).numpy()
    mapped = calibration.scores(x_num.double().numpy(), np.zeros((n, 0), dtype=np.int64))
    assert abs(mapped[observed, 0].mean()) < 0.05 and abs(mapped[observed, 0].std() - 1) < 0.05
    assert np.array_equal(mapped[:, 1], x_num[:, 1].double().numpy())  # a discrete column is its head's
    order = np.argsort(x_num[:, 2].numpy())
    assert (np.diff(mapped[order, 2]) >= 0).all()  # monotone: which rows are high stays the model's


def test_calibrated_rows_take_the_tables_shares_and_the_maps_are_saved_but_not_used_given_cells(mixed_frame, tmp_path):
    config = fast_config()
    config.sampler.calibration_rows = 4096
    syn = Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame)
    uncalibrated = Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame)
    uncalibrated.codec_.calibration = None
    real = mixed_frame["group"].value_counts(normalize=True)

    def gap(frame):
        return 0.5 * (frame["group"].value_counts(normalize=True).reindex(real.index, fill_value=0) - real).abs().sum()

    assert gap(syn.sample(4000, seed=1)) < 0.03 < gap(uncalibrated.sample(4000, seed=1))
    syn.save(tmp_path / "m.tabgen")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.tabgen", progress=False).sample(50, seed=2),
                                  syn.sample(50, seed=2))
    conditional = syn.sample(30, given={"group": "b"}, seed=4)
    syn.codec_.calibration = None  # rows conditional on given cells should not take the table's marginals
    pd.testing.assert_frame_equal(syn.sample(30, given={"group": "b"}, seed=4), conditional)
    config.sampler.calibration_rows = 0
    assert Synthesizer(config=config, progress=False, seed=0).fit(mixed_frame).codec_.calibration is None


def test_a_file_from_before_calibration_and_latent_bounds_samples_as_before(mixed_frame, tmp_path):
    from tabgen.io.modelfile import load_model, save_model

    syn = Synthesizer(config=fast_config(), progress=False, seed=0).fit(mixed_frame)
    syn.save(tmp_path / "m.tabgen")
    header, tensors = load_model(tmp_path / "m.tabgen")
    old = {k: v for k, v in tensors.items() if not k.startswith("calibration.") and k not in ("latent.low", "latent.high")}
    save_model(tmp_path / "old.tabgen", header, old)
    loaded = Synthesizer.load(tmp_path / "old.tabgen", progress=False)
    assert loaded.codec_.calibration is None and loaded.codec_.scaling.low is None
    syn.codec_.calibration, syn.codec_.scaling.low = None, None
    pd.testing.assert_frame_equal(loaded.sample(40, seed=3), syn.sample(40, seed=3))


def test_under_a_deadline_the_calibration_samples_only_the_rows_whose_biases_still_fit(monkeypatch):
    import time

    from tabgen import fitting

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": rng.integers(0, 300, 3000).astype(str), "x": rng.normal(size=3000)})
    syn = Synthesizer(config=fast_config(rare_value_rows=0), progress=False, seed=0).fit(frame)
    tensors = syn.codec_.transform.transform(frame).to_tensors()
    fitted_on = []
    monkeypatch.setattr(fitting, "fit_calibration", lambda x_num, *rest: fitted_on.append(len(x_num)))
    monkeypatch.setattr(fitting, "bias_seconds", lambda logits: 30.0)  # a batch's biases take 30 s
    fitting.calibrate(syn.sampler_, tensors, 8192)
    for seconds in (0, 50, 100, 1000):  # one batch at least; then as many as sampling and biases allow
        fitting.calibrate(syn.sampler_, tensors, 8192, deadline=time.monotonic() + seconds)
    assert fitted_on == [8192, 2048, 2048, 6144, 8192] and calibration_module.CALIBRATION_BATCH == 2048
