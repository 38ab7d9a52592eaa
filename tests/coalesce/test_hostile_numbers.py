"""Hosts whose stats files hold numbers no stats file may hold: failed in one line, the rest merged, stacking intact."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from tests.coalesce import fleet as kit
from tests.support.stats import read_stats

SINCE = 1_700_000_000  # the data sets' start


def test_hostile_numbers_fail_their_host_and_the_composite_stacks(fleet: kit.Fleet, tmp_path: Path):
    """NaN, -inf and negatives went into the composite, which ncs then refused to read back."""
    rng = random.Random(5)
    tables = [kit.make_records(rng, 20, SINCE, ["a.example"]) for _ in range(2)]
    server = fleet.server()
    for i, table in enumerate(tables):
        fleet.serve_file(f"good{i}", kit.write_stats(tmp_path / f"good{i}.stats", table, SINCE), server)
    template = kit.write_stats(tmp_path / "template.stats", kit.make_records(rng, 20, SINCE, []), SINCE).read_text()
    at = template.index("\t\tW\t=> ")
    line = template.count("\n", 0, at) + 1
    hostile = {  # host: (the number written, the reason given)
        "nan": ("nan", "not a finite number: 'nan'"),
        "inf": ("-inf", "not a finite number: '-inf'"),
        "neg": ("-5", "negative number: '-5'"),
        "long": ("9" * 5000, f"number too long (5000 characters, at most 40): '{'9' * 37}...'"),
    }
    for name, (number, _reason) in hostile.items():
        bad = tmp_path / f"{name}.stats"
        bad.write_text(template[:at] + f"\t\tW\t=> {number}" + template[template.index(",", at):])
        fleet.serve_file(name, bad, server)

    run = fleet.run()
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    summary = run.summary()
    for name, (_number, reason) in hostile.items():
        assert summary[name][1] == "failed"
        assert summary[name][4] == f"not a complete stats file: {name}:stdout:{line}: W: {reason}"
    composite = read_stats(str(fleet.composite))
    assert kit.as_tuples(composite.records) == kit.expected_merge(tables)

    # A coalescer stacked above reads the composite as its local agent's file.
    upper = tmp_path / "upper.yaml"
    upper.write_text(yaml.safe_dump({"local": {"name": "lower", "stats": str(fleet.composite)},
                                     "hosts": {}, "cache": str(tmp_path / "upper.stats"),
                                     "lock": str(tmp_path / "upper.lock")}))
    run = kit.run_coalesce("-i", str(upper))
    assert run.returncode == 0, run.stderr
    top = read_stats(str(tmp_path / "upper.stats"))
    assert kit.as_tuples(top.records) == kit.expected_merge(tables)
    assert top.header_value("composite") == "1 sources ok, 0 failed"
