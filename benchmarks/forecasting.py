"""Forecasting benchmark: TCN and LSTM forecasters vs (seasonal) naive and gradient boosting on lag features.

Two series, the same chronological split (70 / 15 / 15 %, by target time) for every method:
- synthetic hourly-like series (3,000 steps; `toolkit.models.forecasting.synthetic_seasonal_series`: trend, daily
  seasonality with a slowly drifting amplitude, weekly seasonality, AR(1) noise), window 168, horizon 24.
  Clearly labelled synthetic: no real seasonal series ships offline here (statsmodels is not installed).
- a real series: the S&P 500 monthly close 1990-2022 (matplotlib's sample_data/Stocks.csv, from Yahoo
  Finance), log scale, window 24, horizon 3: close to a random walk, where the naive forecast is hard to beat.

Baselines: naive (last value), seasonal naive (last season repeated), HistGradientBoostingRegressor per
horizon step on the window's lags (synthetic: the last 72 steps; S&P 500: all 24). Deep:
`build_forecaster(kind="tcn" | "lstm")`, standardised with the training statistics, early stopping on the
validation windows. Errors on the test windows; MASE scaled by the seasonal-naive test MAE (below 1 = better
than seasonal naive).

    .venv/bin/python -m benchmarks.forecasting

Writes the `forecasting` section of BENCHMARKS.md through `benchmarks/_report.py:write_section`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks._report import machine, table, write_section  # noqa: E402
from toolkit.models.forecasting import (build_forecaster, chronological_split, fit_forecaster, forecast_errors,  # noqa: E402
                                        gbm_forecast, seasonal_naive, synthetic_seasonal_series, window_arrays)


def sp500():
    import matplotlib

    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "Stocks.csv")
    with open(path) as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    column = rows[0].index("^GSPC")
    return np.log(np.array([float(r[column]) for r in rows[1:] if len(r) > column and r[column]], "float32"))


def evaluate_series(title, series, window, horizon, season, epochs, seed, lags=None):
    split = chronological_split(len(series), 0.15, 0.15)
    train_x, train_y = window_arrays(series, window, horizon, 0, split["train"])
    test_x, test_y = window_arrays(series, window, horizon, split["val"], split["test"])
    snaive = seasonal_naive(test_x, horizon, season)
    scale = forecast_errors(test_y, snaive)["mae"]
    results = [("naive (last value)", seasonal_naive(test_x, horizon, 1), 0.0),
               (f"seasonal naive (season {season})", snaive, 0.0)]
    t0 = time.perf_counter()
    results.append(("HistGradientBoosting on lags", gbm_forecast(train_x, train_y, test_x, lags=lags, seed=seed),
                    time.perf_counter() - t0))
    for kind in ("tcn", "lstm"):
        t0 = time.perf_counter()
        model = build_forecaster(window, horizon, kind=kind, units=32, num_layers=2)
        out = fit_forecaster(model, series, split, window, horizon, epochs=epochs, batch_size=64, patience=4,
                             seed=seed)
        np.testing.assert_allclose(out["y_true"], test_y)
        results.append((f"{kind.upper()} ({out['epochs']} epochs)", out["y_pred"], time.perf_counter() - t0))
        print(title, results[-1][0], f"{results[-1][2]:.0f} s", flush=True)
    rows = []
    for name, predicted, seconds in results:
        e = forecast_errors(test_y, predicted, scale)
        rows.append([title, name, e["mae"], e["rmse"], e["mase"], f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    best_baseline = min(r[2] for r in rows[:3])
    best_deep = min(r[2] for r in rows[3:])
    return rows, best_deep < best_baseline, len(test_y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--length", type=int, default=3000, help="synthetic series length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    synthetic_rows, synthetic_won, n_syn = evaluate_series("synthetic seasonal (hourly-like)",
                                                           synthetic_seasonal_series(args.length, seed=args.seed),
                                                           168, 24, 24, args.epochs, args.seed, lags=72)
    real_rows, real_won, n_real = evaluate_series("S&P 500 monthly, log (real)", sp500(), 24, 3, 12, args.epochs,
                                                  args.seed)
    total = time.perf_counter() - started
    command = "python -m benchmarks.forecasting " + " ".join(sys.argv[1:] if argv is None else argv)
    markdown = "\n\n".join([
        "## Forecasting: TCN / LSTM vs seasonal naive and gradient boosting",
        f"Command: `{command}` · {machine()} · load average at start {load:.1f} on 2 shared cores · total "
        f"{total / 60:.1f} min.",
        f"Same chronological split for all (targets: 70% train, 15% validation for early stopping, 15% test). "
        f"Synthetic: {args.length} steps, window 168, horizon 24, {n_syn} test windows. S&P 500: 391 monthly log "
        f"closes (matplotlib sample data, Yahoo Finance), window 24, horizon 3, {n_real} test windows. MASE = MAE / "
        "seasonal-naive MAE on the same test windows. TCN: causal dilated Conv1D (2 x 2 layers, 32 filters, "
        "dilations 1-8) + Dense(horizon); LSTM: 2 x 32 units + Dense(horizon); Adam 1e-3, MSE, patience 4.",
        table(["series", "method", "MAE", "RMSE", "MASE", "fit s"], synthetic_rows + real_rows),
        f"Does deep learning beat the baselines (best deep MAE < best baseline MAE)? Synthetic: "
        f"{'yes' if synthetic_won else 'no'}; S&P 500: {'yes' if real_won else 'no'}. The notes insist deep learning "
        "must beat seasonal naive and gradient boosting before it is used; where it does not, use the baseline.",
    ])
    print(markdown)
    if not args.no_write:
        write_section("forecasting", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
