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


def _run_colours(spec) -> dict[str, str]:
    """run -> colour, from the first `color` encoding on the run field anywhere in a chart's spec."""
    if isinstance(spec, dict):
        color = spec.get("encoding", {}).get("color", {}) if isinstance(spec.get("encoding"), dict) else {}
        if color.get("field") == "run" and "scale" in color:
            return dict(zip(color["scale"]["domain"], color["scale"]["range"], strict=True))
        for value in spec.values():
            found = _run_colours(value)
            if found:
                return found
    if isinstance(spec, list):
        for value in spec:
            found = _run_colours(value)
            if found:
                return found
    return {}


def test_history_overlays_give_each_run_the_same_colour_in_both_charts():
    """The ECDF's curve and the percentile bars list the runs in different orders; a run's colour must not
    depend on that order (it swapped between the two overlay charts)."""
    import pandas as pd

    curve = pd.DataFrame({"run": ["run B", "run B", "run A", "run A"], "route": ["direct"] * 4,
                          "ms": [10.0, 20.0, 11.0, 21.0], "fraction": [0.5, 1.0, 0.5, 1.0]})
    bars = pd.DataFrame({"run": ["run A", "run B"], "route": ["direct", "direct"], "percentile": ["p50", "p50"],
                         "ms": [10.0, 11.0], "ci_low": [9.0, 10.0], "ci_high": [11.0, 12.0]})
    ecdf = _run_colours(cc.overlay_ecdf_chart(curve, "total_ms").to_dict())
    percentiles = _run_colours(cc.overlay_percentile_chart(bars, "total_ms").to_dict())
    assert ecdf and ecdf == percentiles
