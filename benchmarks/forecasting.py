"""Forecasting benchmark: TCN and LSTM forecasters vs (seasonal) naive and gradient boosting on lag features.

Two series, the same chronological split (70 / 15 / 15 %, by target time) for every method:
- synthetic hourly-like series (3,000 steps; `toolkit.models.forecasting.synthetic_seasonal_series`: trend, daily
  seasonality with a slowly drifting amplitude, weekly seasonality, AR(1) noise), window 168, horizon 24.
  Clearly labelled synthetic: no real seasonal series ships offline here (statsmodels is not installed).
- a real series: the S&P 500 monthly close 1990-2022 (matplotlib's sample_data/Stocks.csv, from Yahoo
  Finance), log scale, window 24, horizon 3: close to a random walk, where the naive forecast is hard to beat.

Every learned model (gradient boosting, TCN, LSTM) runs twice: on levels and `differenced` (the change from the
window's last value; see `toolkit/models/forecasting.py`), reported side by side.

Baselines: naive (last value), seasonal naive (last season repeated), HistGradientBoostingRegressor per
horizon step on the window's lags (synthetic: the last 72 steps; S&P 500: all 24). Deep:
`build_forecaster(kind="tcn" | "lstm")`, standardised with the training statistics, early stopping on the
validation windows. Errors on the test windows; MASE scaled by the seasonal-naive test MAE (below 1 = better
than seasonal naive). The reading compares the best deep model with the best baseline (either setup) by the
mean per-window MAE difference and its 95% moving-block bootstrap interval (blocks of one season of windows).

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


def block_bootstrap_interval(difference, block: int, samples: int = 2000, seed: int = 0):
    """95% moving-block bootstrap interval of the mean of per-window `difference` (consecutive test windows overlap,
    so their errors are correlated and a plain bootstrap would be too narrow)."""
    rng = np.random.default_rng(seed)
    difference = np.asarray(difference, "float64")
    block = max(1, min(block, len(difference)))
    count = -(-len(difference) // block)
    starts = rng.integers(0, len(difference) - block + 1, size=(samples, count))
    means = difference[(starts[:, :, None] + np.arange(block)).reshape(samples, -1)[:, :len(difference)]].mean(1)
    return tuple(float(q) for q in np.percentile(means, [2.5, 97.5]))


def evaluate_series(title, series, window, horizon, season, epochs, seed, lags=None):
    """Rows `[series, method, MAE / RMSE / MASE / fit s in levels, the same differenced]`; the naive baselines
    forecast from the last value already, so they have one figure for both setups."""
    split = chronological_split(len(series), 0.15, 0.15)
    train_x, train_y = window_arrays(series, window, horizon, 0, split["train"])
    test_x, test_y = window_arrays(series, window, horizon, split["val"], split["test"])
    snaive = seasonal_naive(test_x, horizon, season)
    scale = forecast_errors(test_y, snaive)["mae"]
    results = {"naive (last value)": {False: (seasonal_naive(test_x, horizon, 1), 0.0, None)},
               f"seasonal naive (season {season})": {False: (snaive, 0.0, None)}}
    for differenced in (False, True):
        t0 = time.perf_counter()
        predicted = gbm_forecast(train_x, train_y, test_x, lags=lags, seed=seed, differenced=differenced)
        results.setdefault("HistGradientBoosting on lags", {})[differenced] = (predicted, time.perf_counter() - t0,
                                                                              None)
        for kind in ("tcn", "lstm"):
            t0 = time.perf_counter()
            model = build_forecaster(window, horizon, kind=kind, units=32, num_layers=2, differenced=differenced)
            out = fit_forecaster(model, series, split, window, horizon, epochs=epochs, batch_size=64, patience=4,
                                 seed=seed)
            np.testing.assert_allclose(out["y_true"], test_y)
            results.setdefault(kind.upper(), {})[differenced] = (out["y_pred"], time.perf_counter() - t0,
                                                                 out["epochs"])
            print(title, kind, "differenced" if differenced else "levels", f"{time.perf_counter() - t0:.0f} s",
                  flush=True)
    rows, mae, window_mae = [], {}, {}
    for name, setups in results.items():
        row = [title, name]
        for differenced in (False, True):
            if differenced not in setups:
                row += ["same", "", "", ""]
                continue
            predicted, seconds, fit_epochs = setups[differenced]
            e = forecast_errors(test_y, predicted, scale)
            mae[name, differenced] = e["mae"]
            window_mae[name, differenced] = np.abs(np.asarray(predicted, "float64") - test_y).mean(axis=1)
            row += [e["mae"], e["rmse"], e["mase"],
                    f"{seconds:.0f}" + (f" ({fit_epochs} ep)" if fit_epochs is not None else "")]
        rows.append(row)
        print(rows[-1], flush=True)
    deep, naive = ("TCN", "LSTM"), [n for n in results if n.startswith(("naive", "seasonal"))]
    baseline = {d: min([mae[n, False] for n in naive] + [mae["HistGradientBoosting on lags", d]]) for d in (False, True)}
    won = {d: min(mae[n, d] for n in deep) < baseline[d] for d in (False, True)}
    best_deep = min((k for k in mae if k[0] in deep), key=mae.get)
    best_base = min((k for k in mae if k[0] not in deep), key=mae.get)
    difference = window_mae[best_deep] - window_mae[best_base]
    comparison = {"deep": best_deep, "baseline": best_base, "difference": float(difference.mean()),
                  "interval": block_bootstrap_interval(difference, season, seed=seed), "block": season}
    return rows, won, mae, len(test_y), comparison


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--length", type=int, default=3000, help="synthetic series length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    synthetic = evaluate_series("synthetic seasonal (hourly-like)",
                                synthetic_seasonal_series(args.length, seed=args.seed), 168, 24, 24, args.epochs,
                                args.seed, lags=72)
    real = evaluate_series("S&P 500 monthly, log (real)", sp500(), 24, 3, 12, args.epochs, args.seed)
    total = time.perf_counter() - started
    command = "python -m benchmarks.forecasting " + " ".join(sys.argv[1:] if argv is None else argv)
    reading = []
    for label, (_, won, mae, _, comparison) in (("Synthetic", synthetic), ("S&P 500", real)):
        changes = ", ".join(f"{n.split(' ')[0]} {mae[n, False]:.3g} -> {mae[n, True]:.3g}"
                            for n in ("HistGradientBoosting on lags", "TCN", "LSTM"))
        def named(key):
            return key[0] + (", differenced" if key[1] else ", levels" if (key[0], True) in mae else "")

        best = min(mae, key=mae.get)
        low, high = comparison["interval"]
        sure = "below 0: deep is better" if high < 0 else "above 0: the baseline is better" if low > 0 else \
            "contains 0: not distinguishable on this test part"
        reading.append(f"- {label}: MAE levels -> differenced: {changes}. Deep beats the best baseline of the same "
                       f"setup: levels {'yes' if won[False] else 'no'}, differenced {'yes' if won[True] else 'no'}. "
                       f"Lowest MAE overall: {named(best)} ({mae[best]:.3g}). Best deep ({named(comparison['deep'])}) "
                       f"minus best baseline ({named(comparison['baseline'])}) MAE: {comparison['difference']:+.3g}, "
                       f"95% block-bootstrap interval [{low:+.3g}, {high:+.3g}] (blocks of {comparison['block']} "
                       f"windows), {sure}.")
    learned = [(r, n) for r in (synthetic, real) for n in ("HistGradientBoosting on lags", "TCN", "LSTM")]
    better = sum(r[2][n, True] < r[2][n, False] for r, n in learned)
    reading.append(f"- Differencing lowered the test MAE of {better} of the {len(learned)} learned models (3 per "
                   "series); the naive forecasts are unchanged by construction.")
    markdown = "\n\n".join([
        "## Forecasting: TCN / LSTM vs seasonal naive and gradient boosting",
        f"Command: `{command}` · {machine()} · load average at start {load:.1f} on 2 shared cores · total "
        f"{total / 60:.1f} min.",
        f"Same chronological split for all (targets: 70% train, 15% validation for early stopping, 15% test). "
        f"Synthetic: {args.length} steps, window 168, horizon 24, {synthetic[3]} test windows. S&P 500: 391 monthly "
        f"log closes (matplotlib sample data, Yahoo Finance), window 24, horizon 3, {real[3]} test windows. MASE = "
        "MAE / seasonal-naive MAE on the same test windows. TCN: causal dilated Conv1D (2 x 2 layers, 32 filters, "
        "dilations 1-8) + Dense(horizon); LSTM: 2 x 32 units + Dense(horizon); Adam 1e-3, MSE, patience 4.",
        "Two setups side by side, same split, same models otherwise. *Levels*: inputs and targets are the series' "
        "values. *Differenced* (`differenced=True` in `build_forecaster` / `gbm_forecast`): the inputs are taken "
        "relative to the window's last value and the model predicts the change from it, added back for the "
        "forecast (errors are always on levels). The naive forecasts are already 'last value + 0', so they have "
        "one figure.",
        table(["series", "method", "levels MAE", "RMSE", "MASE", "fit s", "differenced MAE", "RMSE", "MASE",
               "fit s"], synthetic[0] + real[0]),
        "Reading (generated from the figures above):\n" + "\n".join(reading),
        "The notes insist deep learning must beat seasonal naive and gradient boosting before it is used; where "
        "it does not, use the baseline.",
    ])
    print(markdown)
    if not args.no_write:
        write_section("forecasting", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
