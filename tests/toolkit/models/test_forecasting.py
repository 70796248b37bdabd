"""Forecasting windows (keras.utils dataset == numpy), seasonal naive, GBM on lags, and a TCN that learns."""

import numpy as np
import pytest

from toolkit.models.forecasting import (build_forecaster, chronological_split, fit_forecaster, forecast_errors,
                                        gbm_forecast, lag_features, seasonal_naive, synthetic_seasonal_series,
                                        window_arrays, window_dataset, window_starts)


def test_dataset_windows_equal_numpy_windows():
    series = np.stack([np.arange(40.0), -np.arange(40.0)], axis=1)
    x, y = window_arrays(series, window=5, horizon=3, target_start=20, target_end=30)
    assert x.shape == (len(y), 5, 2) and y.shape[1] == 3
    assert y[0, 0] == 15 + 5 and y[-1, -1] == 29  # first window's targets start at 20, the last ends at 29
    batches = list(window_dataset(series, 5, 3, 20, 30, batch_size=4))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    np.testing.assert_array_equal(x[:, -1, 0] + 1, y[:, 0])  # targets follow their window
    with pytest.raises(ValueError, match="no complete window"):
        window_starts(10, 8, 5, 0, 10)


def test_baselines():
    x = np.tile(np.array([1.0, 5.0, 2.0])[None, :, None], (2, 2, 1))  # period 3: 1 5 2 1 5 2
    np.testing.assert_array_equal(seasonal_naive(x, horizon=4, season=3), [[1, 5, 2, 1]] * 2)
    np.testing.assert_array_equal(seasonal_naive(x, horizon=2, season=1), [[2, 2]] * 2)
    assert lag_features(np.zeros((4, 6, 2)), lags=3).shape == (4, 6)
    # a deterministic period-3 series: GBM on lags forecasts it (near) exactly
    series = np.tile([1.0, 5.0, 2.0], 60)
    tx, ty = window_arrays(series, 6, 2, 0, 120)
    vx, vy = window_arrays(series, 6, 2, 120, 180)
    assert forecast_errors(vy, gbm_forecast(tx, ty, vx, max_iter=50))["mae"] < 0.05
    errors = forecast_errors([[1.0, 2.0]], [[2.0, 4.0]], scale=3.0)
    assert errors == pytest.approx({"mae": 1.5, "rmse": np.sqrt(2.5), "mase": 0.5})
    with pytest.raises(ValueError, match="season"):
        seasonal_naive(x, 2, season=10)


def test_tcn_forecaster_beats_naive_on_a_seasonal_series():
    series = synthetic_seasonal_series(900, season=24, weekly=168, seed=0)
    split = chronological_split(len(series), 0.15, 0.15)
    model = build_forecaster(48, 12, kind="tcn", units=16, num_layers=2)
    out = fit_forecaster(model, series, split, 48, 12, epochs=6, batch_size=32)
    x, _ = window_arrays(series, 48, 12, split["val"], split["test"])
    naive = forecast_errors(out["y_true"], seasonal_naive(x, 12, 1))["mae"]  # the last value, repeated
    assert forecast_errors(out["y_true"], out["y_pred"])["mae"] < 0.8 * naive
    assert chronological_split(100, 0.1, 0.2) == {"train": 70, "val": 80, "test": 100}
    with pytest.raises(ValueError, match="kind"):
        build_forecaster(8, 2, kind="arima")


def test_differenced_gbm_extrapolates_a_trend_that_levels_cannot():
    series = 0.5 * np.arange(200.0) + np.tile([0.0, 2.0, -1.0, 1.0], 50)  # the test part lies above the training range
    tx, ty = window_arrays(series, 8, 3, 0, 140)
    vx, vy = window_arrays(series, 8, 3, 140, 200)
    levels = forecast_errors(vy, gbm_forecast(tx, ty, vx, max_iter=50))["mae"]
    changes = forecast_errors(vy, gbm_forecast(tx, ty, vx, max_iter=50, differenced=True))["mae"]
    assert changes < 0.05 and levels > 5


def test_differenced_forecaster_is_shift_equivariant_and_round_trips(tmp_path):
    import keras

    model = build_forecaster(16, 4, channels=2, kind="tcn", units=8, differenced=True)
    x = np.random.default_rng(0).normal(size=(3, 16, 2)).astype("float32")
    shifted = model.predict(x + 7.0, verbose=0)
    np.testing.assert_allclose(shifted, model.predict(x, verbose=0) + 7.0, atol=1e-4)
    path = str(tmp_path / "f.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
