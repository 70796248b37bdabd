"""The learning-rate range test (Smith 2017; the notes, F3:5339-5349): start at 1e-7, raise the rate
exponentially every batch for one epoch, and read the loss curve. A good rate sits at the steepest descent;
the largest usable one just before the loss rises; the two bound a cyclical schedule.

`LRRangeTest` is a Keras callback (it sets `model.optimizer.learning_rate` before every batch, so the model
must be compiled with a constant rate); `analyse_range_test` turns its record into the suggested rates and
`plot_range_test` draws the curve with both points marked.

Examples:
>>> lrs = np.geomspace(1e-5, 1.0, 60)
>>> losses = 2.0 - np.tanh(2 * (np.log10(lrs) + 3)) + np.where(lrs > 0.1, 40 * (lrs - 0.1), 0)
>>> result = analyse_range_test(lrs, losses, smoothing=0.0)
>>> round(float(np.log10(result["steepest"])), 1)   # the tanh falls fastest at lr = 1e-3
-3.0
>>> result["minimum"] > result["steepest"], result["diverged"]
(True, True)
"""

from __future__ import annotations

import math

import keras
import numpy as np

DIVERGE_FACTOR = 4.0  # stop once the smoothed loss exceeds this many times its best (fastai's rule)


class LRRangeTest(keras.callbacks.Callback):
    """Raises the learning rate from `min_lr` to `max_lr` geometrically over `steps` batches (default: the
    epoch's batch count Keras reports), recording each batch's own loss; stops once the loss diverges."""

    def __init__(self, min_lr: float = 1e-7, max_lr: float = 10.0, steps: int | None = None,
                 smoothing: float = 0.95):
        super().__init__()
        if not 0 < min_lr < max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr. Received: min_lr={min_lr}, max_lr={max_lr}")
        self.min_lr, self.max_lr, self.steps, self.smoothing = float(min_lr), float(max_lr), steps, smoothing
        self.lrs, self.losses = [], []
        self._mean, self._best, self._avg = 0.0, math.inf, 0.0

    def on_train_begin(self, logs=None):
        self.steps = self.steps or (self.params or {}).get("steps") or 100
        if isinstance(self.model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError("the LR range test sets the rate every batch: compile with a constant learning rate, "
                             "not a schedule")

    def rate_at(self, step: int) -> float:
        """The rate of batch `step` (0-based): min_lr * (max_lr / min_lr) ** (step / (steps - 1))."""
        fraction = step / max(1, self.steps - 1)
        return self.min_lr * (self.max_lr / self.min_lr) ** min(fraction, 1.0)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate_at(len(self.lrs))

    def on_train_batch_end(self, batch, logs=None):
        mean = float((logs or {}).get("loss", math.nan))
        k = len(self.losses) + 1
        # Keras reports the epoch's running mean; the batch's own loss is k*m_k - (k-1)*m_(k-1)
        loss = k * mean - (k - 1) * self._mean if batch == len(self.losses) else mean
        self._mean = mean
        self.lrs.append(self.rate_at(len(self.lrs)))
        self.losses.append(loss)
        self._avg = self.smoothing * self._avg + (1 - self.smoothing) * loss
        smoothed = self._avg / (1 - self.smoothing ** k)
        self._best = min(self._best, smoothed)
        if not math.isfinite(loss) or smoothed > DIVERGE_FACTOR * self._best or len(self.lrs) >= self.steps:
            self.model.stop_training = True

    def result(self) -> dict:
        return analyse_range_test(self.lrs, self.losses, smoothing=self.smoothing)


def smooth(losses, smoothing: float = 0.95) -> np.ndarray:
    """Bias-corrected exponential moving average (beta = `smoothing`; 0 returns the losses): the online
    view the callback stops on."""
    out, avg = [], 0.0
    for k, loss in enumerate(losses, start=1):
        avg = smoothing * avg + (1 - smoothing) * loss
        out.append(avg / (1 - smoothing ** k) if smoothing else loss)
    return np.asarray(out, dtype="float64")


def centred_average(values, width: int) -> np.ndarray:
    """Moving average centred on each point (edges padded with the end values): unlike the online EMA it
    does not lag, so the points read off it sit at the rates that caused them."""
    values = np.asarray(values, dtype="float64")
    half = max(0, width // 2)
    padded = np.concatenate([np.full(half, values[0]), values, np.full(half, values[-1])])
    return np.convolve(padded, np.ones(2 * half + 1) / (2 * half + 1), mode="valid")


def analyse_range_test(lrs, losses, smoothing: float = 0.95) -> dict:
    """Suggested rates from a range test's record.

    Returns a dict: `steepest` (rate where the loss falls fastest per decade: the suggested rate), `minimum`
    (rate at the lowest loss: about the largest usable one), `cyclical_range` (`cyclical_bounds`: bounds for a
    cyclical schedule), `diverged` (whether the loss rose past 4x its best or went non-finite),
    plus the `lrs`, `losses` and `smoothed` curves. Both points are read off a centred moving average of
    about a fifteenth of the record (no lag); `smoothing` is the online EMA's beta for the divergence rule.
    """
    lrs = np.asarray(lrs, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    if len(lrs) < 5:
        raise ValueError(f"the range test recorded {len(lrs)} batches; it needs at least 5 (more training data, "
                         "or a smaller --batch-size)")
    finite = np.where(np.isfinite(losses), losses, 1e30)
    online = smooth(finite, smoothing)
    diverged = bool(np.any(~np.isfinite(losses)) or online[-1] > DIVERGE_FACTOR * float(np.min(online)))
    smoothed = centred_average(np.minimum(finite, 10 * float(np.max(finite[: max(1, len(finite) // 4)]))),
                               max(3, len(lrs) // 15))
    end = int(np.argmin(smoothed))  # descent is read up to the lowest point
    skip = min(max(1, len(lrs) // 10), max(0, end - 1))  # the first batches are noise around the initial loss
    slopes = np.gradient(smoothed, np.log10(lrs))
    steepest_at = skip + int(np.argmin(slopes[skip:end + 1])) if end > skip else end
    steepest, minimum = float(lrs[steepest_at]), float(lrs[end])
    return {"steepest": steepest, "minimum": minimum, "suggested": steepest,
            "cyclical_range": list(cyclical_bounds(steepest, minimum)),
            "diverged": diverged, "lrs": lrs.tolist(), "losses": losses.tolist(), "smoothed": smoothed.tolist()}


def cyclical_bounds(steepest: float, minimum: float) -> tuple:
    """`(base_lr, max_lr)` of a cyclical schedule from a range test, by Smith 2017 (section 3.3): max_lr where the
    loss stops falling (the lowest-loss rate), halved because "the optimum learning rate is usually within a
    factor of two of the largest one that converges", but never below the steepest-descent rate; base_lr a
    quarter of max_lr ("set base_lr to 1/3 or 1/4 of max_lr").

    >>> cyclical_bounds(0.01, 0.4)
    (0.05, 0.2)
    >>> cyclical_bounds(0.01, 0.015)   # a short descent: the peak stays at the steepest point
    (0.0025, 0.01)
    """
    high = max(float(steepest), float(minimum) / 2)
    return high / 4, high


def plot_range_test(result: dict, path: str, title: str = "learning-rate range test") -> str:
    """Loss against learning rate (log axis), raw and smoothed, the steepest-descent and minimum points marked."""
    from toolkit.metrics.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4))
    lrs, smoothed = np.asarray(result["lrs"]), np.asarray(result["smoothed"])
    ax.plot(lrs, result["losses"], color="0.75", lw=1, label="batch loss")
    ax.plot(lrs, smoothed, color="C0", lw=2, label="smoothed")
    for key, color, text in (("steepest", "C2", "steepest descent (suggested)"), ("minimum", "C3", "lowest loss")):
        ax.axvline(result[key], color=color, ls="--", lw=1, label=f"{text}: {result[key]:.2g}")
    finite = smoothed[np.isfinite(smoothed)]
    if len(finite):
        ax.set_ylim(min(finite) * 0.9, min(max(finite), DIVERGE_FACTOR * min(finite)) * 1.05)
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss", title=title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
