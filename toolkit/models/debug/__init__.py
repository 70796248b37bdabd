"""Debug-statistics models: per-channel activation statistics, dead/blocked filter detection, monitoring."""

from toolkit.models.debug.callback import LayerStatisticsMonitor
from toolkit.models.debug.layers import ChannelStatistics, PreActivation
from toolkit.models.debug.report import StatisticsReport, parse_debug_output
from toolkit.models.debug.statistics import (
    BLOCKED,
    DEAD,
    HEALTHY,
    LayerStats,
    StatisticsAccumulator,
    build_debug_model,
    classify_channels,
    layer_statistics,
    select_layers,
)

__all__ = [
    "BLOCKED", "DEAD", "HEALTHY", "ChannelStatistics", "LayerStatisticsMonitor", "LayerStats", "PreActivation",
    "StatisticsAccumulator", "StatisticsReport", "build_debug_model", "classify_channels", "layer_statistics",
    "parse_debug_output", "select_layers",
]
