"""BG/NBD, the "buy till you die" model of repeat purchases (Fader, Hardie & Lee 2005).

No maintained BG/NBD package installs cleanly on our stack (lifetimes breaks on pandas 3), and
the model is four parameters and one closed-form likelihood, so it lives here on scipy.

Per customer: `x` repeat transactions (distinct purchase days after the first), `t_x` the time
of the last one and `T` the customer's age, both measured from the first purchase. While
alive, a customer buys at rate lambda ~ Gamma(r, alpha); after each purchase they drop out
with probability p ~ Beta(a, b). Times are in any unit, used consistently (we use weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still a customer at T | x, t_x, T); 1 for a customer with no repeat purchase."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        log_ratio = (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
        odds = np.where(x > 0, self.a / np.maximum(self.b + x - 1, 1e-12) * np.exp(np.minimum(log_ratio, 700)), 0.0)
        return 1.0 / (1.0 + odds)

    def p_purchase_within(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(at least one purchase in (T, T + t] | x, t_x, T).

        Exact for BG/NBD: a customer only drops out right after a purchase, so an alive
        customer's first purchase in the window comes at rate lambda with lambda's posterior
        Gamma(r + x, alpha + T), and P(none in t) = ((alpha + T) / (alpha + T + t)) ** (r + x).
        """
        x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
        none_if_alive = np.exp((self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + T + t)))
        return self.p_alive(x, t_x, T) * (1.0 - none_if_alive)

    def expected_purchases(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (the paper's equation 10)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        return head * body / (1 + odds)


def log_likelihood(params: tuple[float, float, float, float], x, t_x, T, weights=None) -> float:
    """The BG/NBD log-likelihood of customers (x, t_x, T), each counted `weights` times."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.where(
        repeat,
        betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + np.where(repeat, t_x, 1)),
        -np.inf,
    )
    per_customer = common + np.logaddexp(alive, dropped)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    return float(np.sum(w * per_customer))


def fit_bgnbd(x, t_x, T) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters (L-BFGS on log-parameters, identical customers pooled)."""
    table = np.column_stack([np.asarray(v, dtype=float) for v in (x, t_x, T)])
    if len(table) == 0:
        raise ValueError("no customers to fit")
    # Day-precision data repeats the same (x, t_x, T) a lot: pool them, the fit gets much cheaper.
    unique, counts = np.unique(np.round(table, 6), axis=0, return_counts=True)
    ux, ut, uT = unique[:, 0], unique[:, 1], unique[:, 2]
    scale = max(float(np.mean(uT)), 1e-9)

    def negative(log_params: np.ndarray) -> float:
        params = np.exp(np.clip(log_params, -20, 20))
        value = log_likelihood(tuple(params), ux, ut, uT, counts)
        return -value / counts.sum() if np.isfinite(value) else 1e10

    best = None
    for start in ([0.5, scale, 1.0, 1.0], [1.0, scale / 2, 0.5, 2.0]):
        result = minimize(negative, np.log(start), method="L-BFGS-B", options={"maxiter": 500})
        if best is None or result.fun < best.fun:
            best = result
    r, alpha, a, b = np.exp(np.clip(best.x, -20, 20))
    return BgNbd(float(r), float(alpha), float(a), float(b))
