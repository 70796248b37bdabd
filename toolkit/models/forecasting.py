"""Windowed time-series forecasting (F3:10605-10628): the notes' workflow is baselines first (seasonal naive,
then gradient boosting on lag features), then deep learning, which has to beat them to be worth it.

    split = chronological_split(len(series), val_fraction=0.15, test_fraction=0.15)
    train = window_dataset(series, window=168, horizon=24, start=0, end=split["train"])   # keras.utils
    model = build_forecaster(window=168, horizon=24, kind="tcn")
    ...
    seasonal_naive(windows_x, horizon=24, season=24)             # y[t + h] = y[t + h - season]
    gbm_forecast(train_x, train_y, test_x)                        # HistGradientBoostingRegressor per step

Windows: `x = series[i : i + window]`, `y = series[i + window : i + window + horizon]` (the first channel is the
target). `window_dataset` builds them with `keras.utils.timeseries_dataset_from_array`; `window_arrays` gives the
same windows as numpy arrays for the sklearn baselines (a test checks they match).

`differenced=True` (in `build_forecaster` and `gbm_forecast`) forecasts the change from the window's last value
instead of the level: the inputs are taken relative to each channel's last value and the forecast is that change
plus the last target value. The model is then shift invariant, so a trend that carries the test part above the
training range (where trees cannot extrapolate and tanh states saturate) no longer takes it out of what it saw.
"""

from __future__ import annotations

import keras
import numpy as np

from toolkit.models.sequence import sequence_encoder

FORECASTER_KINDS = ("tcn", "lstm", "gru", "cnn")


def _as_2d(series) -> np.ndarray:
    series = np.asarray(series, "float32")
    return series[:, None] if series.ndim == 1 else series


def chronological_split(length: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> dict:
    """Boundaries of train / validation / test in time order: targets in `[0, train)`, `[train, val)`,
    `[val, length)`.

    >>> chronological_split(100, 0.1, 0.2)
    {'train': 70, 'val': 80, 'test': 100}
    """
    if not 0 < val_fraction + test_fraction < 1:
        raise ValueError(f"val_fraction + test_fraction must be in (0, 1). Received: {val_fraction + test_fraction}")
    test = int(round(length * (1 - test_fraction)))
    val = int(round(length * (1 - test_fraction - val_fraction)))
    return {"train": val, "val": test, "test": length}


def window_starts(length: int, window: int, horizon: int, target_start: int, target_end: int) -> np.ndarray:
    """Start indices i of the windows whose targets `[i + window, i + window + horizon)` lie in
    `[target_start, target_end)` (inputs may reach back before target_start: that is history, not leakage)."""
    first = max(target_start - window, 0)
    last = min(target_end, length) - window - horizon
    if last < first:
        raise ValueError(f"no complete window of {window} + {horizon} steps has its targets in "
                         f"[{target_start}, {target_end}) of a {length}-step series")
    return np.arange(first, last + 1)


def window_arrays(series, window: int, horizon: int, target_start: int = 0, target_end: int | None = None):
    """`(x [n, window, channels], y [n, horizon])` numpy windows (target = channel 0).

    >>> x, y = window_arrays(np.arange(6), window=3, horizon=2)
    >>> x[:, :, 0].tolist(), y.tolist()
    ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]])
    """
    data = _as_2d(series)
    starts = window_starts(len(data), window, horizon, target_start, len(data) if target_end is None else target_end)
    x = np.stack([data[i:i + window] for i in starts])
    y = np.stack([data[i + window:i + window + horizon, 0] for i in starts])
    return x, y


def window_dataset(series, window: int, horizon: int, target_start: int = 0, target_end: int | None = None,
                   batch_size: int = 64, shuffle: bool = False, seed: int = 0):
    """A `tf.data.Dataset` of `(x [B, window, C], y [B, horizon])` via `keras.utils.timeseries_dataset_from_array`
    (sequences of window + horizon steps, split into inputs and targets)."""
    data = _as_2d(series)
    starts = window_starts(len(data), window, horizon, target_start, len(data) if target_end is None else target_end)
    dataset = keras.utils.timeseries_dataset_from_array(
        data, None, sequence_length=window + horizon, batch_size=batch_size, shuffle=shuffle, seed=seed,
        start_index=int(starts[0]), end_index=int(starts[-1] + window + horizon))
    return dataset.map(lambda s: (s[:, :window], s[:, window:, 0]))


def seasonal_naive(x, horizon: int, season: int) -> np.ndarray:
    """Each window's forecast repeats its last season: y[t + h] = y[t + h - season * ceil(h / season)].
    `season=1` is the plain naive forecast (the last value).

    >>> seasonal_naive(np.array([[[1.0], [2.0], [3.0], [4.0]]]), horizon=3, season=2).tolist()
    [[3.0, 4.0, 3.0]]
    """
    x = np.asarray(x)[..., 0]
    if season > x.shape[1]:
        raise ValueError(f"the window ({x.shape[1]} steps) is shorter than the season ({season})")
    last = x[:, -season:]
    return np.stack([last[:, h % season] for h in range(horizon)], axis=1)


def lag_features(x, lags: int | None = None) -> np.ndarray:
    """Windows `[n, window, C]` -> lag features `[n, lags * C]` (the most recent `lags` steps of every channel)."""
    x = np.asarray(x)
    lags = x.shape[1] if lags is None else int(lags)
    return x[:, -lags:, :].reshape(len(x), -1)


def gbm_forecast(train_x, train_y, test_x, lags: int | None = None, seed: int = 0, differenced: bool = False,
                 **params) -> np.ndarray:
    """Gradient boosting on lag features: one `HistGradientBoostingRegressor` per horizon step (direct strategy).

    `differenced=True`: the lags are taken relative to each channel's last value and the trees fit
    `y - last target value`; the forecast adds the last value back.

    Runs single-threaded (threadpoolctl): on a busy shared machine OpenMP threads per boosting iteration cost ~10x
    more than they save at these sizes (a few thousand windows)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.multioutput import MultiOutputRegressor
    from threadpoolctl import threadpool_limits

    train_x, test_x, train_y = np.asarray(train_x), np.asarray(test_x), np.asarray(train_y)
    train_last, test_last = (train_x[:, -1, 0:1], test_x[:, -1, 0:1]) if differenced else (0.0, 0.0)
    if differenced:
        train_x, test_x = train_x - train_x[:, -1:, :], test_x - test_x[:, -1:, :]
    model = MultiOutputRegressor(HistGradientBoostingRegressor(random_state=seed, **params))
    with threadpool_limits(1):
        model.fit(lag_features(train_x, lags), train_y - train_last)
        return model.predict(lag_features(test_x, lags)) + test_last


@keras.saving.register_keras_serializable(package="toolkit")
class SubtractLastValue(keras.layers.Layer):
    """`[B, T, C]` windows -> the same windows relative to each channel's last value (`x - x[:, -1:, :]`)."""

    def call(self, window):
        return window - window[:, -1:, :]


@keras.saving.register_keras_serializable(package="toolkit")
class AddLastValue(keras.layers.Layer):
    """`(change [B, H], window [B, T, C])` -> `change + window[:, -1, 0]` (the forecast back in levels)."""

    def call(self, change, window):
        return change + keras.ops.cast(window[:, -1, 0:1], change.dtype)

    def compute_output_shape(self, change_shape, window_shape):
        return change_shape


def build_forecaster(window: int, horizon: int, channels: int = 1, kind: str = "tcn", units: int = 32,
                     num_layers: int = 2, kernel_size: int = 3, dropout: float = 0.0, differenced: bool = False,
                     name: str | None = None) -> keras.Model:
    """`[B, window, channels]` -> `[B, horizon]` forecasts: a float-sequence encoder (`toolkit.models.sequence`:
    causal dilated TCN, LSTM, GRU or CNN) and a linear head over all horizon steps at once.

    `differenced=True`: the encoder sees the window relative to its last value (`SubtractLastValue`) and the head
    predicts the change, added back to the last target value (`AddLastValue`), so the output is still a level.

    >>> build_forecaster(24, 6, kind="lstm", units=8).output_shape
    (None, 6)
    """
    if kind not in FORECASTER_KINDS:
        raise ValueError(f"kind must be one of {FORECASTER_KINDS}. Received: {kind!r}")
    inputs = keras.Input((window, channels), name="window")
    x = SubtractLastValue(name="relative_window")(inputs) if differenced else inputs
    x = sequence_encoder(x, kind, units=units, num_layers=num_layers, kernel_size=kernel_size, prefix=kind)
    x = keras.layers.Dropout(dropout)(x) if dropout else x
    outputs = keras.layers.Dense(horizon, dtype="float32", name="change" if differenced else "forecast")(x)
    if differenced:
        outputs = AddLastValue(dtype="float32", name="forecast")(outputs, inputs)
    return keras.Model(inputs, outputs, name=name or f"{kind}{'_differenced' if differenced else ''}_forecaster")


def forecast_errors(y_true, y_pred, scale: float | None = None) -> dict:
    """MAE, RMSE and (with `scale`, e.g. the seasonal-naive MAE) MASE = MAE / scale."""
    error = np.asarray(y_pred, "float64") - np.asarray(y_true, "float64")
    out = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2)))}
    if scale:
        out["mase"] = out["mae"] / scale
    return out


def fit_forecaster(model, series, split: dict, window: int, horizon: int, epochs: int = 20, batch_size: int = 64,
                   learning_rate: float = 1e-3, patience: int = 5, seed: int = 0, verbose: int = 0) -> dict:
    """Standardises with the training part's mean / std, trains on the training windows with early stopping on
    the validation windows (best weights kept), and returns test forecasts in the original units.

    Returns `{"y_true", "y_pred", "epochs", "mean", "std"}` for the test windows (targets in [val, test)).
    """
    keras.utils.set_random_seed(seed)
    data = _as_2d(series)
    mean, std = data[:split["train"]].mean(axis=0), data[:split["train"]].std(axis=0) + 1e-8
    scaled = (data - mean) / std
    train = window_dataset(scaled, window, horizon, 0, split["train"], batch_size, shuffle=True, seed=seed)
    val = window_dataset(scaled, window, horizon, split["train"], split["val"], batch_size)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=[stop], verbose=verbose)
    x, y = window_arrays(data, window, horizon, split["val"], split["test"])
    predicted = model.predict((x - mean) / std, verbose=0) * std[0] + mean[0]
    return {"y_true": y, "y_pred": predicted, "epochs": len(history.history["loss"]), "mean": mean, "std": std}


def synthetic_seasonal_series(length: int = 3000, season: int = 24, weekly: int = 168, seed: int = 0) -> np.ndarray:
    """A synthetic (clearly not real) hourly-like series: slow trend + daily and weekly seasonality whose daily
    amplitude is modulated by a slow random regime, plus AR(1) noise (phi 0.8). No package here ships a real
    seasonal series offline (statsmodels' co2 / sunspots are not installed).

    >>> synthetic_seasonal_series(500).shape
    (500,)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    regime = 1.0 + 0.5 * np.tanh(np.cumsum(rng.normal(0, 0.05, length)))
    noise = np.zeros(length)
    shocks = rng.normal(0, 0.4, length)
    for i in range(1, length):
        noise[i] = 0.8 * noise[i - 1] + shocks[i]
    series = (10 + 0.001 * t + 2.0 * regime * np.sin(2 * np.pi * t / season)
              + 1.0 * np.sin(2 * np.pi * t / weekly) + noise)
    return series.astype("float32")
