"""Layer statistics: per-channel activation statistics, dead/blocked filter detection, monitoring.

The custom Keras objects here (`ChannelStatistics`, `PreActivation`, `LayerStatisticsMonitor`) keep their
registered names (`toolkit>ChannelStatistics`, ...), so `.keras` files saved before the move still load.
"""

from toolkit.inspect.statistics.callback import LayerStatisticsMonitor
from toolkit.inspect.statistics.channels import (
    BLOCKED,
    DEAD,
    HEALTHY,
    NOT_APPLICABLE,
    LayerStats,
    StatisticsAccumulator,
    checks_for,
    classify_channels,
)
from toolkit.inspect.statistics.layers import ChannelStatistics, PreActivation
from toolkit.inspect.statistics.report import StatisticsReport, parse_debug_output
from toolkit.inspect.statistics.statistics import (
    build_debug_model,
    iterate_inputs,
    layer_statistics,
    select_layers,
    walk_layers,
)

__all__ = [
    "BLOCKED", "DEAD", "HEALTHY", "NOT_APPLICABLE", "ChannelStatistics", "LayerStatisticsMonitor", "LayerStats",
    "PreActivation", "StatisticsAccumulator", "StatisticsReport", "build_debug_model", "checks_for",
    "classify_channels", "iterate_inputs",
    "layer_statistics", "parse_debug_output", "select_layers", "walk_layers",
]
