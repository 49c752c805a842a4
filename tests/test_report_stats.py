"""Report statistics on hand examples: McNemar exact and mid-p, paired and stratified bootstrap."""

import math

import numpy as np
import pytest

from taskgrove.report.stats import is_binary, mcnemar, paired_bootstrap, resampled_means, stratified_bootstrap


@pytest.mark.parametrize(
    ("b", "c", "exact", "mid"),
    [
        (1, 5, 14 / 64, 8 / 64),  # P(X<=1) = 7/64 for X ~ Bin(6, 1/2); mid-p subtracts P(X=1) = 6/64
        (5, 1, 14 / 64, 8 / 64),  # symmetric in b and c
        (0, 10, 2 / 1024, 1 / 1024),
        (2, 8, 2 * 56 / 1024, (2 * 56 - 45) / 1024),  # P(X<=2) = (1+10+45)/1024
        (3, 3, 1.0, 1.0),
        (0, 0, 1.0, 1.0),
        (0, 1, 1.0, 0.5),
    ],
)
def test_mcnemar_hand_values(b, c, exact, mid):
    result = mcnemar(b, c)
    assert (result.b, result.c) == (b, c)
    assert result.p_exact == pytest.approx(exact, abs=1e-15)
    assert result.p_mid == pytest.approx(mid, abs=1e-15)


def test_mcnemar_large_counts_stay_exact_and_finite():
    result = mcnemar(5000, 5300)
    assert 0 < result.p_mid < result.p_exact < 0.01
    # the normal approximation with continuity correction agrees to a few percent at this size
    z = (abs(5000 - 5300) - 1) / math.sqrt(10300)
    assert result.p_exact == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.05)
    assert 0.0 <= mcnemar(0, 3000).p_exact < 1e-300  # 2 / 2**3000 underflows to 0.0, never an error


def test_mcnemar_matches_scipy_binomtest_when_installed():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(40, 61), (7, 14), (120, 90), (1, 30)]:
        assert mcnemar(b, c).p_exact == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar(-1, 2)


def test_paired_bootstrap_constant_difference_is_exact():
    result = paired_bootstrap([0, 0, 1, 0], [1, 1, 2, 1], n_resamples=500)
    assert (result.diff, result.ci_low, result.ci_high) == (1.0, 1.0, 1.0)
    assert result.p_value == pytest.approx(1 / 501)
    same = paired_bootstrap([0.2, 0.5, 0.9], [0.2, 0.5, 0.9])
    assert (same.diff, same.p_value) == (0.0, 1.0)


def test_paired_bootstrap_matches_binomial_hand_example():
    # d = b - a is 1 for 3 of 10 pairs and 0 otherwise, so a resampled mean is Bin(10, 0.3) / 10.
    # p = P(|X/10 - 0.3| >= 0.3) = P(X = 0) + P(X >= 6); the 95% interval is [0.0, 0.6].
    a = [0.0] * 10
    b = [1.0] * 3 + [0.0] * 7
    result = paired_bootstrap(a, b, n_resamples=40000, seed=1)
    pmf = [math.comb(10, k) * 0.3**k * 0.7 ** (10 - k) for k in range(11)]
    expected_p = pmf[0] + sum(pmf[6:])
    assert expected_p == pytest.approx(0.0756, abs=1e-4)
    assert result.diff == pytest.approx(0.3)
    assert (result.mean_a, result.mean_b, result.n) == (0.0, 0.3, 10)
    assert result.p_value == pytest.approx(expected_p, abs=0.006)
    assert result.ci_low == pytest.approx(0.0)
    assert result.ci_high == pytest.approx(0.6)


def test_paired_bootstrap_continuous_values_and_sign():
    rng = np.random.default_rng(3)
    a = rng.normal(0.5, 0.1, size=400)
    b = a - 0.05 + rng.normal(0, 0.02, size=400)  # B is worse by 0.05, tightly paired
    result = paired_bootstrap(a, b, n_resamples=2000)
    assert result.diff == pytest.approx(-0.05, abs=0.005)
    assert result.ci_low < result.diff < result.ci_high < 0
    assert result.p_value == pytest.approx(1 / 2001)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])


def test_resampled_means_is_unbiased_for_many_levels():
    values = np.linspace(0, 1, 500)  # more levels than the multinomial shortcut takes
    means = resampled_means(values, 3000, np.random.default_rng(0))
    assert means.mean() == pytest.approx(0.5, abs=0.005)
    assert means.std() == pytest.approx(values.std() / math.sqrt(500), rel=0.1)


def test_stratified_bootstrap_degenerate_and_weighted():
    constant = stratified_bootstrap([[1.0, 1.0], [0.0] * 6])
    assert constant.mean == (0.5, 0.5)
    assert constant.weighted == (0.25, 0.25)


def test_stratified_bootstrap_widths_match_the_analytic_standard_errors():
    # two 0/1 tasks of different sizes: SE(mean) = 1/2 sqrt(sum p(1-p)/n), SE(pooled) = sqrt(sum n p(1-p)) / N
    tasks = [[1.0] * 120 + [0.0] * 80, [1.0] * 150 + [0.0] * 650]
    result = stratified_bootstrap(tasks, n_resamples=4000, seed=2)
    p = [0.6, 150 / 800]
    n = [200, 800]
    se_mean = 0.5 * math.sqrt(sum(pi * (1 - pi) / ni for pi, ni in zip(p, n, strict=False)))
    se_pooled = math.sqrt(sum(ni * pi * (1 - pi) for pi, ni in zip(p, n, strict=False))) / sum(n)
    assert (result.mean[1] - result.mean[0]) / (2 * 1.96) == pytest.approx(se_mean, rel=0.1)
    assert (result.weighted[1] - result.weighted[0]) / (2 * 1.96) == pytest.approx(se_pooled, rel=0.1)
    assert result.mean[0] < (0.6 + 0.1875) / 2 < result.mean[1]
    assert result.weighted[0] < 270 / 1000 < result.weighted[1]
    with pytest.raises(ValueError):
        stratified_bootstrap([[1.0], []])


def test_is_binary():
    assert is_binary([0, 1.0, 1, 0.0])
    assert not is_binary([0, 0.5])
