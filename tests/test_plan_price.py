"""The price a comparison used is stored with its plan: through the store, and through export and import."""

from __future__ import annotations

import pytest

from cfai.plan import Plan
from cfai.pricing import ModelPrice, custom_price
from cfai.run_import import RunImportError
from cfai.store import Store
from tests.test_store import make_records

MODEL = "@cf/meta/llama-3.1-8b-instruct"


def _price() -> ModelPrice:
    return custom_price(MODEL, 0.2, 0.9, 0.05, note="our contract")


def test_plan_price_round_trips_through_the_store_and_exports(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    plan = Plan(model=MODEL, body={"prompt": "hi"}, n=3, price=_price().to_dict())
    assert Plan.from_dict(plan.to_dict()).price == plan.price
    store.begin_run("run-1", plan, connection_label="local")
    store.add_records("run-1", make_records("run-1"))
    store.finish_run("run-1")
    stored = store.run_info("run-1").plan
    assert ModelPrice.from_dict(stored.price) == _price()
    for fmt in ("json", "csv"):
        other = Store(tmp_path / f"other-{fmt}.sqlite3")
        new_id = other.import_run(store.export_run("run-1", fmt), fmt)
        assert ModelPrice.from_dict(other.run_info(new_id).plan.price) == _price()


def test_an_import_with_a_broken_price_is_refused_with_the_field(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    plan = Plan(model=MODEL, body={"prompt": "hi"}, n=3, price={**_price().to_dict(), "input_per_m": -1})
    store.begin_run("run-1", plan, connection_label="local")
    store.add_records("run-1", make_records("run-1"))
    store.finish_run("run-1")
    with pytest.raises(RunImportError) as err:
        Store(tmp_path / "b.sqlite3").import_run(store.export_run("run-1", "json"), "json")
    assert any("price" in p for p in err.value.problems)
