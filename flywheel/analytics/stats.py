"""Experiment statistics on sufficient statistics: pure functions, no I/O.

Every function takes per-arm sufficient statistics (``n`` and ``conversions`` for a binomial
metric; ``n``, ``sum`` and ``sum_squares`` for a mean metric) so that experiments run anywhere
can be evaluated. Formulas are documented in ``docs/statistics.md``; tests check them against
statsmodels and scipy.

Invalid input raises :class:`~flywheel.core.errors.InvalidInput` naming the bad field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy import special
from scipy import stats as sps

from flywheel.core.errors import InvalidInput

Correction = Literal["holm", "bh", "none"]

#: Above this many successes in the treatment arm the exact Beta comparison (a sum with that
#: many terms) is replaced by its normal approximation, which is then accurate to < 1e-4.
_EXACT_BETA_LIMIT = 2_000_000
#: Default prior scale of the mSPRT mixture, as a fraction of the control mean.
DEFAULT_SEQUENTIAL_TAU = 0.1


@dataclass(frozen=True)
class BinomialArm:
    """One arm of a conversion experiment: ``conversions`` of ``n`` units converted."""

    n: int
    conversions: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise InvalidInput(f"n must be positive (got {self.n})", detail={"field": "n"})
        if self.conversions < 0:
            raise InvalidInput(
                f"conversions must be >= 0 (got {self.conversions})",
                detail={"field": "conversions"},
            )
        if self.conversions > self.n:
            raise InvalidInput(
                f"conversions ({self.conversions}) exceeds n ({self.n})",
                detail={"field": "conversions"},
            )

    @property
    def mean(self) -> float:
        return self.conversions / self.n

    @property
    def variance(self) -> float:
        """Per-unit variance p(1-p) (the binomial MLE, as in the z-test)."""
        return self.mean * (1.0 - self.mean)


@dataclass(frozen=True)
class MeanArm:
    """One arm of a continuous metric: ``n`` units, ``sum`` and ``sum_squares`` of the metric.

    For CUPED, the optional pre-period covariate totals ``pre_sum``, ``pre_sum_squares`` and
    ``sum_products`` (sum of metric × covariate) may be given.
    """

    n: int
    sum: float
    sum_squares: float
    pre_sum: float | None = None
    pre_sum_squares: float | None = None
    sum_products: float | None = None

    def __post_init__(self) -> None:
        if self.n < 2:
            raise InvalidInput(
                f"n must be at least 2 for a mean metric (got {self.n})", detail={"field": "n"}
            )
        if self.sum_squares < 0 or self._centered(self.sum, self.sum_squares) < 0:
            raise InvalidInput(
                "sum_squares is smaller than sum²/n: the variance would be negative",
                detail={"field": "sum_squares"},
            )
        covariate = (self.pre_sum, self.pre_sum_squares, self.sum_products)
        if any(v is not None for v in covariate) and any(v is None for v in covariate):
            raise InvalidInput(
                "CUPED needs pre_sum, pre_sum_squares and sum_products together",
                detail={"field": "pre_sum"},
            )
        if (
            self.pre_sum is not None
            and self.pre_sum_squares is not None
            and self._centered(self.pre_sum, self.pre_sum_squares) < 0
        ):
            raise InvalidInput(
                "pre_sum_squares is smaller than pre_sum²/n: the variance would be negative",
                detail={"field": "pre_sum_squares"},
            )

    def _centered(self, total: float, squares: float) -> float:
        centered = squares - total * total / self.n
        # Tolerate rounding noise of a zero-variance arm.
        if centered < 0 and -centered <= 1e-9 * max(abs(squares), 1.0):
            return 0.0
        return centered

    @property
    def has_covariate(self) -> bool:
        return self.pre_sum is not None

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator)."""
        return self._centered(self.sum, self.sum_squares) / (self.n - 1)


Arm = BinomialArm | MeanArm


@dataclass(frozen=True)
class Comparison:
    """Treatment versus control.

    ``difference`` and its CI are on the absolute scale (treatment − control); ``lift`` is
    relative (difference / control mean) with a delta-method CI; ``None`` when the control
    mean is 0. ``always_valid_p_value`` is the mSPRT p-value, valid under continuous peeking.
    """

    difference: float
    standard_error: float
    ci_low: float
    ci_high: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    p_value: float
    chance_to_win: float
    always_valid_p_value: float
    p_value_adjusted: float | None = None


@dataclass(frozen=True)
class ExperimentResult:
    """The answer for one experiment: one :class:`Comparison` per treatment and the SRM check."""

    metric: Literal["binomial", "mean"]
    alpha: float
    correction: Correction
    cuped: bool
    cuped_theta: float | None
    srm_p_value: float
    control_mean: float
    treatment_means: dict[str, float]
    comparisons: dict[str, Comparison]


# -- building blocks -----------------------------------------------------------------------------
def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be in (0, 1) (got {alpha})", detail={"field": "alpha"})


def _clip_p(p: float) -> float:
    return float(min(1.0, max(0.0, p)))


def lift_interval(
    mean_c: float, var_mean_c: float, mean_t: float, var_mean_t: float, *, alpha: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift (μt − μc)/μc and its delta-method CI; ``(None, None, None)`` if μc = 0.

    Var(μ̂t/μ̂c) ≈ Var(μ̂t)/μc² + μt²·Var(μ̂c)/μc⁴ (independent arms).
    """
    if mean_c * mean_c == 0:  # zero, or so small that its square underflows
        return None, None, None
    ratio = mean_t / mean_c
    lift = ratio - 1.0
    var = (var_mean_t + ratio * ratio * var_mean_c) / (mean_c * mean_c)
    half = float(sps.norm.ppf(1 - alpha / 2)) * math.sqrt(max(var, 0.0))
    return lift, lift - half, lift + half


def msprt_p_value(difference: float, variance: float, tau: float) -> float:
    """Always-valid p-value of the normal-mixture SPRT (Johari et al., "Peeking at A/B tests").

    ``variance`` is the variance of the difference estimate at this look and ``tau`` the
    standard deviation of the normal mixing distribution over effects. The mixture likelihood
    ratio is Λ = sqrt(V/(V+τ²))·exp(τ²Δ²/(2V(V+τ²))); the p-value is min(1, 1/Λ). Given
    a history of looks, the running minimum over looks keeps it valid (see
    :func:`running_always_valid_p`).
    """
    if variance <= 0:
        return 1.0 if difference == 0 else 0.0
    tau2 = tau * tau
    if tau2 <= 0:
        return 1.0
    ratio = tau2 / variance
    z2 = difference * difference / variance
    if not (math.isfinite(ratio) and math.isfinite(z2)):
        return 1.0 if difference == 0 else 0.0
    log_lr = -0.5 * math.log1p(ratio) + 0.5 * z2 * ratio / (1.0 + ratio)
    return _clip_p(math.exp(-log_lr)) if log_lr > 0 else 1.0


def running_always_valid_p(
    differences: Sequence[float], variances: Sequence[float], tau: float
) -> list[float]:
    """The always-valid p-value after each look: the running minimum of the mSPRT p-values."""
    out: list[float] = []
    best = 1.0
    for diff, var in zip(differences, variances, strict=True):
        best = min(best, msprt_p_value(diff, var, tau))
        out.append(best)
    return out


def chance_to_beat_binomial(control: BinomialArm, treatment: BinomialArm) -> float:
    """P(p_t > p_c) under independent Beta(1 + conversions, 1 + failures) posteriors.

    Exact closed form (a finite sum, Miller 2015) up to ``_EXACT_BETA_LIMIT`` treatment
    successes, normal approximation of the two Betas beyond.
    """
    a_c, b_c = 1 + control.conversions, 1 + control.n - control.conversions
    a_t, b_t = 1 + treatment.conversions, 1 + treatment.n - treatment.conversions
    if a_t > _EXACT_BETA_LIMIT:
        m_c, m_t = a_c / (a_c + b_c), a_t / (a_t + b_t)
        v_c = a_c * b_c / ((a_c + b_c) ** 2 * (a_c + b_c + 1))
        v_t = a_t * b_t / ((a_t + b_t) ** 2 * (a_t + b_t + 1))
        return chance_to_beat_normal(m_c, v_c, m_t, v_t)
    i = np.arange(a_t, dtype=np.float64)
    terms = (
        special.betaln(a_c + i, b_c + b_t)
        - np.log(b_t + i)
        - special.betaln(1 + i, b_t)
        - special.betaln(a_c, b_c)
    )
    return _clip_p(float(np.exp(special.logsumexp(terms))))


def chance_to_beat_normal(
    mean_c: float, var_mean_c: float, mean_t: float, var_mean_t: float
) -> float:
    """P(μt > μc) with normal posteriors N(mean, var) (flat prior, large-sample)."""
    scale = math.sqrt(var_mean_c + var_mean_t)
    if scale == 0:
        return 0.5 if mean_t == mean_c else float(mean_t > mean_c)
    return _clip_p(float(sps.norm.cdf((mean_t - mean_c) / scale)))


def srm_p_value(counts: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Sample-ratio-mismatch check: Pearson χ² goodness of fit of arm sizes to planned weights.

    ``weights`` default to an equal split; they are normalised. Small p (< 0.001 is the usual
    alarm) means the assignment is broken and the comparison should not be trusted.
    """
    observed = np.asarray(counts, dtype=np.float64)
    if observed.size < 2:
        return 1.0
    w = np.ones_like(observed) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != observed.shape or np.any(w <= 0):
        raise InvalidInput(
            "weights must be one positive number per arm", detail={"field": "weights"}
        )
    expected = observed.sum() * w / w.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return _clip_p(float(sps.chi2.sf(statistic, df=observed.size - 1)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values (false discovery rate control)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")[::-1]
    ranks = m - np.arange(m)
    adjusted = np.minimum.accumulate(p[order] * m / ranks)
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]


def adjust(p_values: Sequence[float], correction: Correction) -> list[float]:
    """Adjusted p-values for ``correction`` (``none`` returns them unchanged)."""
    if correction == "holm":
        return holm(p_values)
    if correction == "bh":
        return benjamini_hochberg(p_values)
    return [float(p) for p in p_values]


# -- CUPED ---------------------------------------------------------------------------------------
def cuped_theta(arms: Sequence[MeanArm]) -> float:
    """θ = cov(Y, X) / var(X) pooled over all arms, from the covariate sufficient statistics."""
    n = sum(a.n for a in arms)
    sy = sum(a.sum for a in arms)
    sx = sum(a.pre_sum or 0.0 for a in arms)
    sxx = sum(a.pre_sum_squares or 0.0 for a in arms)
    sxy = sum(a.sum_products or 0.0 for a in arms)
    var_x = sxx - sx * sx / n
    if var_x <= 0:
        return 0.0
    return (sxy - sx * sy / n) / var_x


def cuped_theta_from_samples(metric: Sequence[float], covariate: Sequence[float]) -> float:
    """θ = cov(Y, X) / var(X) from per-user values (for callers that hold raw data)."""
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    var_x = float(np.var(x))
    if var_x == 0:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / var_x)


def cuped_adjust(
    arms: Sequence[MeanArm], theta: float | None = None
) -> tuple[list[MeanArm], float]:
    """Arms of the CUPED-adjusted metric Y' = Y − θ(X − x̄), x̄ the pooled covariate mean.

    Returns the adjusted sufficient statistics (without covariate) and θ. The adjustment keeps
    each arm's expected difference and lowers the variance by the factor 1 − ρ².
    """
    if not all(a.has_covariate for a in arms):
        raise InvalidInput(
            "CUPED needs pre_sum, pre_sum_squares and sum_products on every arm",
            detail={"field": "pre_sum"},
        )
    theta = cuped_theta(arms) if theta is None else theta
    x_bar = sum(a.pre_sum or 0.0 for a in arms) / sum(a.n for a in arms)
    c = theta * x_bar
    adjusted = []
    for a in arms:
        sx, sxx, sxy = a.pre_sum or 0.0, a.pre_sum_squares or 0.0, a.sum_products or 0.0
        total = a.sum - theta * sx + a.n * c
        squares = (
            a.sum_squares
            + theta**2 * sxx
            + a.n * c * c
            - 2 * theta * sxy
            + 2 * c * a.sum
            - 2 * c * theta * sx
        )
        squares = max(squares, total * total / a.n)
        adjusted.append(MeanArm(n=a.n, sum=total, sum_squares=squares))
    return adjusted, theta


# -- comparisons ---------------------------------------------------------------------------------
def compare_proportions(
    control: BinomialArm,
    treatment: BinomialArm,
    *,
    alpha: float = 0.05,
    pooled_test: bool = True,
    tau: float | None = None,
) -> Comparison:
    """Two-proportion comparison.

    CI of the difference: unpooled Wald, Δ ± z·sqrt(pc(1−pc)/nc + pt(1−pt)/nt). Test: the z-test
    with the pooled proportion under H0 (as ``statsmodels.proportions_ztest``), or the unpooled
    standard error when ``pooled_test`` is false.
    """
    _check_alpha(alpha)
    diff = treatment.mean - control.mean
    var_c, var_t = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(var_c + var_t)
    z_crit = float(sps.norm.ppf(1 - alpha / 2))
    if pooled_test:
        pooled = (control.conversions + treatment.conversions) / (control.n + treatment.n)
        se_test = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    else:
        se_test = se
    p_value = (
        (1.0 if diff == 0 else 0.0)
        if se_test == 0
        else _clip_p(2 * float(sps.norm.sf(abs(diff) / se_test)))
    )
    lift, lift_low, lift_high = lift_interval(
        control.mean, var_c, treatment.mean, var_t, alpha=alpha
    )
    scale = DEFAULT_SEQUENTIAL_TAU * control.mean if tau is None else tau
    if scale == 0:
        scale = DEFAULT_SEQUENTIAL_TAU * math.sqrt(max(control.variance, 0.25 / control.n))
    return Comparison(
        difference=diff,
        standard_error=se,
        ci_low=diff - z_crit * se,
        ci_high=diff + z_crit * se,
        lift=lift,
        lift_ci_low=lift_low,
        lift_ci_high=lift_high,
        p_value=p_value,
        chance_to_win=chance_to_beat_binomial(control, treatment),
        always_valid_p_value=msprt_p_value(diff, se * se, scale),
    )


def welch_df(var_mean_c: float, var_mean_t: float, n_c: int, n_t: int) -> float:
    """Welch–Satterthwaite degrees of freedom."""
    numerator = (var_mean_c + var_mean_t) ** 2
    denominator = var_mean_c**2 / (n_c - 1) + var_mean_t**2 / (n_t - 1)
    return numerator / denominator if denominator > 0 else float(n_c + n_t - 2)


def compare_means(
    control: MeanArm, treatment: MeanArm, *, alpha: float = 0.05, tau: float | None = None
) -> Comparison:
    """Welch t comparison of two means from (n, sum, sum_squares).

    Δ ± t(1−α/2, ν)·sqrt(sc²/nc + st²/nt) with Welch–Satterthwaite ν; two-sided p from t(ν).
    """
    _check_alpha(alpha)
    diff = treatment.mean - control.mean
    var_c, var_t = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(var_c + var_t)
    df = welch_df(var_c, var_t, control.n, treatment.n)
    t_crit = float(sps.t.ppf(1 - alpha / 2, df))
    p_value = (
        (1.0 if diff == 0 else 0.0) if se == 0 else _clip_p(2 * float(sps.t.sf(abs(diff) / se, df)))
    )
    lift, lift_low, lift_high = lift_interval(
        control.mean, var_c, treatment.mean, var_t, alpha=alpha
    )
    scale = DEFAULT_SEQUENTIAL_TAU * abs(control.mean) if tau is None else tau
    if scale == 0:
        scale = DEFAULT_SEQUENTIAL_TAU * math.sqrt(control.variance)
    return Comparison(
        difference=diff,
        standard_error=se,
        ci_low=diff - t_crit * se,
        ci_high=diff + t_crit * se,
        lift=lift,
        lift_ci_low=lift_low,
        lift_ci_high=lift_high,
        p_value=p_value,
        chance_to_win=chance_to_beat_normal(control.mean, var_c, treatment.mean, var_t),
        always_valid_p_value=msprt_p_value(diff, se * se, scale),
    )


def evaluate(
    *,
    control: Arm,
    treatments: Mapping[str, Arm],
    alpha: float = 0.05,
    correction: Correction = "holm",
    weights: Mapping[str, float] | None = None,
    cuped: bool | None = None,
    tau: float | None = None,
) -> ExperimentResult:
    """Compare every treatment with the control.

    ``weights`` are planned traffic shares per arm (``"control"`` and each treatment name) for
    the SRM check, equal when omitted. ``cuped`` defaults to on when every mean arm carries the
    pre-period covariate. ``correction`` adjusts the p-values across treatments (``holm`` or
    ``bh``). Raises :class:`InvalidInput` for mixed metric kinds or an empty treatment set.
    """
    _check_alpha(alpha)
    if not treatments:
        raise InvalidInput("at least one treatment is required", detail={"field": "treatments"})
    names = list(treatments)
    arms: list[Arm] = [control, *(treatments[n] for n in names)]
    theta: float | None = None
    if all(isinstance(a, BinomialArm) for a in arms):
        metric: Literal["binomial", "mean"] = "binomial"
        use_cuped = False
        if cuped:
            raise InvalidInput("CUPED applies to mean metrics only", detail={"field": "cuped"})
    elif all(isinstance(a, MeanArm) for a in arms):
        metric = "mean"
        mean_arms = [a for a in arms if isinstance(a, MeanArm)]
        use_cuped = all(a.has_covariate for a in mean_arms) if cuped is None else cuped
        if use_cuped:
            adjusted, theta = cuped_adjust(mean_arms)
            arms = list(adjusted)
    else:
        raise InvalidInput(
            "control and treatments must all be of the same metric kind",
            detail={"field": "treatments"},
        )
    planned = None
    if weights is not None:
        missing = [k for k in ["control", *names] if k not in weights]
        if missing:
            raise InvalidInput(
                f"weights lacks arm(s) {', '.join(missing)}", detail={"field": "weights"}
            )
        planned = [weights["control"], *(weights[n] for n in names)]
    srm = srm_p_value([a.n for a in arms], planned)
    base = arms[0]
    comparisons: dict[str, Comparison] = {}
    for name, arm in zip(names, arms[1:], strict=True):
        if isinstance(base, BinomialArm) and isinstance(arm, BinomialArm):
            comparisons[name] = compare_proportions(base, arm, alpha=alpha, tau=tau)
        elif isinstance(base, MeanArm) and isinstance(arm, MeanArm):
            comparisons[name] = compare_means(base, arm, alpha=alpha, tau=tau)
    adjusted_p = adjust([c.p_value for c in comparisons.values()], correction)
    comparisons = {
        name: replace(c, p_value_adjusted=p)
        for (name, c), p in zip(comparisons.items(), adjusted_p, strict=True)
    }
    return ExperimentResult(
        metric=metric,
        alpha=alpha,
        correction=correction,
        cuped=use_cuped,
        cuped_theta=theta,
        srm_p_value=srm,
        control_mean=base.mean,
        treatment_means={n: a.mean for n, a in zip(names, arms[1:], strict=True)},
        comparisons=comparisons,
    )
