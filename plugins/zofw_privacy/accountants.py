"""Accountants of subsampled mechanisms composed over a run's privacy ledger.

Each declares the mechanisms and sampling schemes it composes (``Accountant.mechanisms``,
``samplings``); the base class refuses any other event in one line before ``epsilon`` runs, rather than
mis-account it. Poisson sampling (add/remove-one) is composed by all; fixed-size batches sampled without
replacement (replace-one) only by ``rdp``, the one method here with an analysis of them.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace
from typing import Any, Sequence

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant
from pydantic import Field

from zofw.errors import BadInput
from zofw.privacy.ledger import PrivacyEvent
from zofw.slots.accountant import Accountant
from zofw.slots.base import Options

# dp-accounting logs a warning for every fractional RDP order whose series does not converge; those
# orders are dropped from the minimum, which only makes ε conservative.
logging.getLogger("absl").setLevel(logging.ERROR)

def to_dp_event(events: Sequence[PrivacyEvent]) -> dp_event.DpEvent:
    """The ledger as one dp-accounting event: subsampled mechanisms, each self-composed. Events were
    checked against the accountant's declarations before they get here (``Accountant.check_event``)."""
    parts = []
    for event in events:
        inner = (dp_event.GaussianDpEvent(event.noise_multiplier) if event.mechanism == "gaussian"
                 else dp_event.LaplaceDpEvent(event.noise_multiplier))
        if event.sampling == "fixed_size":
            assert event.dataset_size is not None
            batch = round(event.sample_rate * event.dataset_size)
            inner = dp_event.SampledWithoutReplacementDpEvent(event.dataset_size, batch, inner)
        elif event.sample_rate < 1:
            inner = dp_event.PoissonSampledDpEvent(event.sample_rate, inner)
        parts.append(dp_event.SelfComposedDpEvent(inner, event.steps))
    return dp_event.ComposedDpEvent(parts)


def relation(events: Sequence[PrivacyEvent]) -> "dp_accounting.NeighboringRelation":
    replace_one = events[0].neighbouring == "replace-one"
    return dp_accounting.NeighboringRelation.REPLACE_ONE if replace_one else \
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE


class RDPAccountant(Accountant):
    """Rényi DP (dp-accounting): fast and conservative; needs 6–8% more noise than PLD for the same ε."""

    name = "rdp"
    mechanisms = ("gaussian",)  # dp-accounting's RDP composes subsampled Gaussians only
    samplings = ("poisson", "fixed_size")  # fixed size: sampled without replacement, replace-one

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        if not events:
            return 0.0
        accountant = rdp_privacy_accountant.RdpAccountant(neighboring_relation=relation(events))
        accountant.compose(to_dp_event(events))
        return float(accountant.get_epsilon(delta))

    def curve(self, event: PrivacyEvent, marks: Sequence[int], delta: float) -> list[float]:
        """RDP composes by addition: one step's RDP at every order, computed once, times t."""
        self.check_event(event)
        accountant = rdp_privacy_accountant.RdpAccountant(neighboring_relation=relation([event]))
        accountant.compose(to_dp_event([replace(event, steps=1)]))
        orders, one_step = getattr(accountant, "_orders", None), getattr(accountant, "_rdp", None)
        if orders is None or one_step is None:  # a dp-accounting without these attributes: one call per mark
            return super().curve(event, marks, delta)
        return [float(rdp_privacy_accountant.compute_epsilon(orders, t * one_step, delta)[0]) for t in marks]


class PLDOptions(Options):
    discretization: float = Field(1e-4, gt=0)  # value discretisation interval of the loss distribution


class PLDAccountant(Accountant):
    """Privacy loss distributions (dp-accounting): tight, pessimistic discretisation."""

    name = "pld"
    Options = PLDOptions
    mechanisms = ("gaussian", "laplace", "discrete_gaussian")

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        if not events:
            return 0.0
        if any(event.mechanism == "discrete_gaussian" for event in events):
            return self._composed_directly(events, delta)
        accountant = pld_privacy_accountant.PLDAccountant(
            neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
            value_discretization_interval=self.options.discretization)
        accountant.compose(to_dp_event(events))
        return float(accountant.get_epsilon(delta))

    def curve(self, event: PrivacyEvent, marks: Sequence[int], delta: float) -> list[float]:
        """Incremental composition: the distribution after each mark is the previous one composed with the
        gap's (gaps repeat in a run's log steps, so each distinct gap is self-composed once)."""
        self.check_event(event)
        one = self._distribution(event)
        gaps: dict[int, Any] = {}
        values, total, done = [], None, 0
        for mark in marks:
            gap = mark - done
            if gap not in gaps:
                gaps[gap] = one.self_compose(gap)
            total = gaps[gap] if total is None else total.compose(gaps[gap])
            done = mark
            values.append(float(total.get_epsilon_for_delta(delta)))
        return values

    def _distribution(self, event: PrivacyEvent) -> Any:
        """The privacy loss distribution of one release of ``event`` (Poisson-subsampled)."""
        from dp_accounting.pld import privacy_loss_distribution as pld

        grid = self.options.discretization
        if event.mechanism == "discrete_gaussian":
            if not event.sensitivity:
                raise BadInput("a discrete_gaussian ledger event lacks its integer sensitivity")
            return pld.from_discrete_gaussian_mechanism(event.noise_multiplier * event.sensitivity,
                                                        sensitivity=event.sensitivity, sampling_prob=event.sample_rate,
                                                        value_discretization_interval=grid)
        if event.mechanism == "gaussian":
            return pld.from_gaussian_mechanism(event.noise_multiplier, sampling_prob=event.sample_rate,
                                               value_discretization_interval=grid)
        return pld.from_laplace_mechanism(event.noise_multiplier, sampling_prob=event.sample_rate,
                                          value_discretization_interval=grid)

    def _composed_directly(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        """Ledgers with discrete-Gaussian events, which dp-accounting has no DpEvent for: each event's
        privacy loss distribution (Poisson-subsampled, add/remove-one) built directly and composed."""
        total = None
        for event in events:
            one = self._distribution(event)
            one = one.self_compose(event.steps)
            total = one if total is None else total.compose(one)
        assert total is not None
        return float(total.get_epsilon_for_delta(delta))


CURVE_POINTS = 8  # PRV evaluations for a run's running ε


class PRVOptions(Options):
    eps_error: float = Field(0.01, gt=0)  # absolute error allowed in ε
    delta_error_ratio: float = Field(1e-3, gt=0, lt=1)  # δ error as a fraction of δ


class PRVAccountant(Accountant):
    """Privacy random variables (prv-accountant): tight; reports the upper end of its error bound."""

    name = "prv"
    Options = PRVOptions

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        if not events:
            return 0.0
        # prv-accountant 0.2 raises RuntimeError ("Discrete mean differs…") in some high-ε settings;
        # retry with a coarser grid, then report ε as unbounded (inf) rather than crash or under-report.
        for eps_error in (self.options.eps_error, self.options.eps_error * 10):
            try:
                return self._upper_bound(events, delta, eps_error)
            except (RuntimeError, ValueError, OverflowError):
                continue
        warnings.warn("prv-accountant could not bound ε for this ledger; reporting ε = inf", stacklevel=2)
        return math.inf

    def curve(self, event: PrivacyEvent, marks: Sequence[int], delta: float) -> list[float]:
        """Each PRV evaluation costs about a second whatever t is, so ε is computed at no more than
        ``CURVE_POINTS`` counts (geometric, the last one included) and each mark gets the value at the
        first computed count at or after it: an upper bound, since ε grows with the steps."""
        self.check_event(event)
        last = marks[-1]
        grid = sorted({min(last, max(1, round(last ** (k / (CURVE_POINTS - 1))))) for k in range(CURVE_POINTS)}
                      | {last})
        at = dict(zip(grid, super().curve(event, grid, delta)))
        return [at[next(g for g in grid if g >= mark)] for mark in marks]

    def _upper_bound(self, events: Sequence[PrivacyEvent], delta: float, eps_error: float) -> float:
        from prv_accountant import PRVAccountant as _PRV
        from prv_accountant.privacy_random_variables import (
            GaussianMechanism,
            PoissonSubsampledGaussianMechanism,
        )

        prvs = [PoissonSubsampledGaussianMechanism(noise_multiplier=e.noise_multiplier, sampling_probability=e.sample_rate)
                if e.sample_rate < 1 else GaussianMechanism(noise_multiplier=e.noise_multiplier) for e in events]
        steps = [e.steps for e in events]
        accountant = _PRV(prvs=prvs, max_self_compositions=steps, eps_error=eps_error,
                          delta_error=delta * self.options.delta_error_ratio)
        _, _, upper = accountant.compute_epsilon(delta=delta, num_self_compositions=steps)
        return float(upper)


class PureDPAccountant(Accountant):
    """Pure ε-DP by basic composition: each Laplace release is (1/σ)-DP, Poisson subsampling at rate q
    amplifies it to ln(1 + q·(e^{1/σ} − 1)), and T releases add up. The bound holds at δ = 0, so it is
    reported whatever δ is asked for; Gaussian events have no pure-DP bound and are refused."""

    name = "pure"
    mechanisms = ("laplace",)

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        total = 0.0
        for event in events:
            per_release = 1.0 / event.noise_multiplier  # Δ₁ / b
            amplified = math.log1p(event.sample_rate * math.expm1(per_release)) if event.sample_rate < 1 else per_release
            total += event.steps * amplified
        return total
