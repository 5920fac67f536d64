"""The comparison charts' specs: on a log scale every layer shares it, and values are points, not bars."""

from __future__ import annotations

import pytest

from cfai import chart_data as cd
from components import compare_charts as cc
from tests.test_chart_data import fake_summary, synthetic_records


def _layers(spec: dict) -> list[dict]:
    return spec.get("layer") or spec["spec"]["layer"]


@pytest.mark.parametrize("log_scale", [False, True])
def test_percentile_charts_layers_agree_on_the_scale(log_scale):
    df = synthetic_records(50)
    bars = cd.percentile_bars(df, fake_summary(df))
    overlay = bars.assign(run="run A")
    for chart in (cc.percentile_chart(bars, "total_ms", log_scale=log_scale),
                  cc.overlay_percentile_chart(overlay, "total_ms", log_scale=log_scale)):
        layers = _layers(chart.to_dict())
        scale_types = {layer["encoding"]["y"].get("scale", {}).get("type", "linear") for layer in layers}
        assert scale_types == {"log" if log_scale else "linear"}
        value_mark = layers[0]["mark"]["type"] if isinstance(layers[0]["mark"], dict) else layers[0]["mark"]
        assert value_mark == ("point" if log_scale else "bar")  # a bar has no zero on a log scale
