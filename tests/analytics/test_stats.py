"""Experiment statistics checked against independent implementations (statsmodels, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_ztest,
)
from statsmodels.stats.proportion import (
    test_proportions_2indep as wald_2indep,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from flywheel.analytics import stats
from flywheel.core.errors import InvalidInput


def _mean_arm(values: np.ndarray, pre: np.ndarray | None = None) -> stats.MeanArm:
    if pre is None:
        return stats.MeanArm(
            n=values.size, sum=float(values.sum()), sum_squares=float((values**2).sum())
        )
    return stats.MeanArm(
        n=values.size,
        sum=float(values.sum()),
        sum_squares=float((values**2).sum()),
        pre_sum=float(pre.sum()),
        pre_sum_squares=float((pre**2).sum()),
        sum_products=float((values * pre).sum()),
    )


@pytest.mark.parametrize(
    ("nc", "cc", "nt", "ct", "alpha"),
    [(1000, 100, 1000, 130, 0.05), (5000, 240, 4800, 251, 0.1), (80, 3, 95, 9, 0.01)],
)
def test_two_proportions_match_statsmodels(
    nc: int, cc: int, nt: int, ct: int, alpha: float
) -> None:
    result = stats.compare_proportions(
        stats.BinomialArm(nc, cc), stats.BinomialArm(nt, ct), alpha=alpha
    )
    _, p_pooled = proportions_ztest([ct, cc], [nt, nc])
    low, high = confint_proportions_2indep(
        ct, nt, cc, nc, method="wald", compare="diff", alpha=alpha
    )
    assert result.difference == pytest.approx(ct / nt - cc / nc, abs=1e-12)
    assert result.p_value == pytest.approx(p_pooled, rel=1e-9)
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)
    unpooled = stats.compare_proportions(
        stats.BinomialArm(nc, cc), stats.BinomialArm(nt, ct), alpha=alpha, pooled_test=False
    )
    wald = wald_2indep(ct, nt, cc, nc, method="wald", compare="diff")
    assert unpooled.p_value == pytest.approx(wald.pvalue, rel=1e-9)


def test_welch_matches_scipy_and_statsmodels() -> None:
    rng = np.random.default_rng(7)
    control = rng.gamma(2.0, 50.0, size=700)
    treatment = rng.gamma(2.2, 52.0, size=650)
    result = stats.compare_means(_mean_arm(control), _mean_arm(treatment), alpha=0.05)
    expected = sps.ttest_ind_from_stats(
        treatment.mean(),
        treatment.std(ddof=1),
        treatment.size,
        control.mean(),
        control.std(ddof=1),
        control.size,
        equal_var=False,
    )
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8)
    low, high = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(
        alpha=0.05, usevar="unequal"
    )
    assert result.ci_low == pytest.approx(low, rel=1e-8)
    assert result.ci_high == pytest.approx(high, rel=1e-8)
    assert result.difference == pytest.approx(treatment.mean() - control.mean(), rel=1e-12)


def test_lift_delta_method_matches_simulation() -> None:
    control, treatment = stats.BinomialArm(20000, 1000), stats.BinomialArm(20000, 1100)
    result = stats.compare_proportions(control, treatment)
    assert result.lift == pytest.approx(0.1)
    # Independent check: the bootstrap distribution of the ratio of two binomial proportions.
    rng = np.random.default_rng(11)
    pc = rng.binomial(20000, 0.05, size=200_000) / 20000
    pt = rng.binomial(20000, 0.055, size=200_000) / 20000
    low, high = np.quantile(pt / pc - 1, [0.025, 0.975])
    assert result.lift_ci_low == pytest.approx(low, abs=0.005)
    assert result.lift_ci_high == pytest.approx(high, abs=0.005)


def test_chance_to_win_binomial_matches_numerical_integration() -> None:
    control, treatment = stats.BinomialArm(400, 40), stats.BinomialArm(380, 50)
    a_c, b_c, a_t, b_t = 41, 361, 51, 331

    def integrand(x: float) -> float:
        return float(sps.beta.pdf(x, a_t, b_t) * sps.beta.cdf(x, a_c, b_c))

    expected, _ = integrate.quad(integrand, 0, 1, limit=200)
    assert stats.chance_to_beat_binomial(control, treatment) == pytest.approx(expected, abs=1e-7)
    # Swapping arms gives the complement.
    assert stats.chance_to_beat_binomial(treatment, control) == pytest.approx(
        1 - expected, abs=1e-7
    )


def test_chance_to_win_normal_approximation_for_huge_arms() -> None:
    big_c, big_t = (
        stats.BinomialArm(60_000_000, 3_000_000),
        stats.BinomialArm(60_000_000, 3_004_000),
    )
    value = stats.chance_to_beat_binomial(big_c, big_t)
    sd = math.sqrt(2 * 0.05 * 0.95 / 60_000_000)
    assert value == pytest.approx(sps.norm.cdf((4000 / 60_000_000) / sd), abs=1e-3)


def test_srm_matches_scipy_chisquare() -> None:
    counts = [5000, 5210, 4890]
    assert stats.srm_p_value(counts) == pytest.approx(sps.chisquare(counts).pvalue, rel=1e-10)
    weights = [0.5, 0.25, 0.25]
    expected = [sum(counts) * w for w in weights]
    assert stats.srm_p_value(counts, weights) == pytest.approx(
        sps.chisquare(counts, expected).pvalue, rel=1e-10
    )


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_multiple_comparison_corrections_match_statsmodels(method: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(4):  # multipletests(holm) runs gc.collect() on each call: keep it few
        p = rng.uniform(0, 0.2, size=int(rng.integers(1, 9)))
        expected = multipletests(p, method=method)[1]
        ours = stats.holm(p) if method == "holm" else stats.benjamini_hochberg(p)
        np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_cuped_matches_per_user_computation_and_reduces_variance() -> None:
    rng = np.random.default_rng(5)
    pre_c, pre_t = rng.normal(100, 30, 2000), rng.normal(100, 30, 2100)
    y_c = 0.8 * pre_c + rng.normal(0, 10, 2000)
    y_t = 0.8 * pre_t + rng.normal(2, 10, 2100)
    arms = [_mean_arm(y_c, pre_c), _mean_arm(y_t, pre_t)]
    adjusted, theta = stats.cuped_adjust(arms)
    y_all, x_all = np.concatenate([y_c, y_t]), np.concatenate([pre_c, pre_t])
    expected_theta = np.cov(y_all, x_all)[0, 1] / np.var(x_all, ddof=1)
    assert theta == pytest.approx(expected_theta, rel=1e-9)
    assert stats.cuped_theta_from_samples(y_all, x_all) == pytest.approx(expected_theta, rel=1e-9)
    x_bar = x_all.mean()
    for arm, y, x in zip(adjusted, [y_c, y_t], [pre_c, pre_t], strict=True):
        y_adj = y - theta * (x - x_bar)
        assert arm.mean == pytest.approx(y_adj.mean(), rel=1e-9)
        assert arm.variance == pytest.approx(y_adj.var(ddof=1), rel=1e-6)
    plain = stats.evaluate(control=arms[0], treatments={"b": arms[1]}, cuped=False)
    reduced = stats.evaluate(control=arms[0], treatments={"b": arms[1]})
    assert reduced.cuped and reduced.cuped_theta == pytest.approx(theta)
    assert reduced.comparisons["b"].standard_error < 0.5 * plain.comparisons["b"].standard_error


def test_msprt_controls_type_one_error_under_continuous_peeking() -> None:
    """Peeking at every look with the always-valid p keeps false positives ≤ α; naive p does not."""
    rng = np.random.default_rng(2024)
    experiments, looks, per_look, alpha = 400, 60, 50, 0.05
    a = rng.binomial(1, 0.1, size=(experiments, looks * per_look)).reshape(experiments, looks, -1)
    b = rng.binomial(1, 0.1, size=(experiments, looks * per_look)).reshape(experiments, looks, -1)
    conv_a, conv_b = a.sum(axis=2).cumsum(axis=1), b.sum(axis=2).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    pa, pb = conv_a / n, conv_b / n
    diff = pb - pa
    variance = (pa * (1 - pa) + pb * (1 - pb)) / n
    pooled = (conv_a + conv_b) / (2 * n)
    se_pooled = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive_p = np.where(se_pooled > 0, 2 * sps.norm.sf(np.abs(diff) / se_pooled), 1.0)
    naive_hits = int(np.any(naive_p < alpha, axis=1).sum())
    sequential_hits = 0
    for e in range(experiments):
        # the default mixture scale of compare_proportions: 10 % of the control rate
        always_valid = stats.running_always_valid_p(
            diff[e].tolist(), variance[e].tolist(), 0.1 * max(float(pa[e, -1]), 1e-3)
        )
        sequential_hits += always_valid[-1] < alpha
    # the last look's result of compare_proportions agrees with the vectorised computation
    last = stats.compare_proportions(
        stats.BinomialArm(int(n[-1]), int(conv_a[0, -1])),
        stats.BinomialArm(int(n[-1]), int(conv_b[0, -1])),
    )
    assert last.p_value == pytest.approx(naive_p[0, -1], rel=1e-9)
    assert sequential_hits / experiments <= alpha
    assert naive_hits / experiments > 2 * alpha  # what peeking at the fixed-horizon p does


def test_msprt_detects_a_real_effect() -> None:
    result = stats.compare_proportions(
        stats.BinomialArm(50_000, 5000), stats.BinomialArm(50_000, 5600)
    )
    assert result.always_valid_p_value < 0.01
    assert result.always_valid_p_value >= result.p_value
    assert stats.running_always_valid_p([0.0, 0.05, 0.01], [1e-4, 1e-4, 1e-4], 0.05)[-1] == (
        pytest.approx(stats.msprt_p_value(0.05, 1e-4, 0.05))
    )


def test_evaluate_applies_correction_and_srm() -> None:
    result = stats.evaluate(
        control=stats.BinomialArm(1000, 100),
        treatments={"b": stats.BinomialArm(1000, 125), "c": stats.BinomialArm(1000, 118)},
        correction="holm",
    )
    raw = [result.comparisons["b"].p_value, result.comparisons["c"].p_value]
    expected = multipletests(raw, method="holm")[1]
    assert [result.comparisons[k].p_value_adjusted for k in ("b", "c")] == pytest.approx(
        list(expected)
    )
    assert result.srm_p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: stats.BinomialArm(10, 12), "conversions"),
        (lambda: stats.BinomialArm(0, 0), "n"),
        (lambda: stats.BinomialArm(10, -1), "conversions"),
        (lambda: stats.MeanArm(n=10, sum=100.0, sum_squares=10.0), "sum_squares"),
        (lambda: stats.MeanArm(n=1, sum=1.0, sum_squares=1.0), "n"),
    ],
)
def test_invalid_arms_name_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build()  # type: ignore[operator]
    assert info.value.detail["field"] == field
    assert field in info.value.message


binomial_arms = st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.builds(stats.BinomialArm, st.just(n), st.integers(min_value=0, max_value=n))
)


@settings(max_examples=150, deadline=None)
@given(binomial_arms, binomial_arms, st.sampled_from([0.01, 0.05, 0.2]))
def test_binomial_properties(
    control: stats.BinomialArm, treatment: stats.BinomialArm, alpha: float
) -> None:
    forward = stats.compare_proportions(control, treatment, alpha=alpha)
    backward = stats.compare_proportions(treatment, control, alpha=alpha)
    assert forward.ci_low <= forward.difference <= forward.ci_high
    assert 0.0 <= forward.p_value <= 1.0
    assert 0.0 <= forward.chance_to_win <= 1.0
    assert 0.0 <= forward.always_valid_p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value, abs=1e-12)
    assert forward.difference == pytest.approx(-backward.difference, abs=1e-12)
    assert forward.ci_low == pytest.approx(-backward.ci_high, abs=1e-12)
    assert forward.chance_to_win + backward.chance_to_win == pytest.approx(1.0, abs=1e-6)


mean_samples = st.lists(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=2, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(mean_samples, mean_samples)
def test_mean_properties(control: list[float], treatment: list[float]) -> None:
    c, t = _mean_arm(np.array(control)), _mean_arm(np.array(treatment))
    forward = stats.compare_means(c, t)
    backward = stats.compare_means(t, c)
    assert forward.ci_low <= forward.difference + 1e-9
    assert forward.difference <= forward.ci_high + 1e-9
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value, abs=1e-9)
    assert forward.chance_to_win + backward.chance_to_win == pytest.approx(1.0, abs=1e-9)
