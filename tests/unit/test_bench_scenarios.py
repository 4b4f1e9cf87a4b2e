"""``bench.run --only``: a subset of the scenarios, by name, for an A/B run;
and the results file such a second run of one commit writes."""

from __future__ import annotations

import pytest

from bench.run import SCENARIOS, select_scenarios, unused_results_path


def test_without_only_every_scenario_runs():
    assert select_scenarios(None) == SCENARIOS


def test_only_takes_names_separated_by_commas_in_the_tables_order():
    chosen = select_scenarios(["authorize only, redirect login"])
    assert list(chosen) == ["redirect login", "authorize only"]


def test_only_is_repeatable_and_takes_load_generator_names():
    chosen = select_scenarios(["/me", "custom_token"])
    assert list(chosen) == ["custom-token login", "/me"]


@pytest.mark.parametrize("only", [["redirect login,no such scenario"], ["", " , "]])
def test_an_unknown_or_empty_name_is_refused(only):
    with pytest.raises(ValueError, match="unknown scenario"):
        select_scenarios(only)


def test_a_second_run_of_one_commit_does_not_overwrite_the_first(tmp_path):
    stem = str(tmp_path / "2026-12-06-abc1234")
    assert unused_results_path(stem) == f"{stem}.json"
    (tmp_path / "2026-12-06-abc1234.json").write_text("{}")
    assert unused_results_path(stem) == f"{stem}-run2.json"
    (tmp_path / "2026-12-06-abc1234-run2.json").write_text("{}")
    assert unused_results_path(stem) == f"{stem}-run3.json"
