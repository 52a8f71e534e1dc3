"""Selection advisor: seed 000's tier rules, power / UPS / electricity / cost formulas, and the CLI contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmrack import advisor
from llmrack.cli import app
from llmrack.errors import LlmrackError

runner = CliRunner()


@pytest.mark.parametrize(("team", "usage", "tier", "servers"), [
    (50, "light", "entry", 1),       # seed 000 选型建议: 50 people light -> 2x RTX 4090
    (50, "normal", "standard", 1),   # ... normal -> 4x RTX 4090
    (50, "heavy", "high-performance", 1),  # ... heavy -> 8x RTX 4090
    (20, "normal", "entry", 1),      # 推荐服务器配置: 10-30 people -> entry
    (120, "heavy", "high-performance", 3),
])
def test_tier_follows_the_selection_guide(team, usage, tier, servers):
    got, n, why = advisor.pick_tier(team, usage)
    assert (got, n) == (tier, servers)
    assert str(team) in why


def test_power_chain_reproduces_the_seed_table():
    """Seed 000 电力需求与UPS, 2x RTX 4090 row: 1.85 kW in sum -> 2.22 kW peak -> 1,600 kWh and 1,920 CNY a month,
    a 3-5 kVA UPS. The seed's own sum is 350 W above its formula; cpu_w=650 gives that sum."""
    a = advisor.Assumptions(cpu_w=650)
    pw = advisor.power(2, 450, a)
    assert pw["sum_kw"] == pytest.approx(1.85)
    assert pw["peak_kw"] == pytest.approx(2.22)
    assert pw["month_kwh"] == pytest.approx(1600, rel=0.005)
    assert pw["month_cny"] == pytest.approx(1920, rel=0.005)
    assert 3 <= pw["ups_kva"] <= 5
    # the formula as written: 300 + 4 x 450 + 100 + 50 + 150 = 2.4 kW, 2.88 kW with the 20 % redundancy
    pw4 = advisor.power(4, 450, advisor.Assumptions())
    assert (pw4["sum_kw"], pw4["peak_kw"]) == (pytest.approx(2.4), pytest.approx(2.88))
    assert pw4["ups_kva_needed"] == pytest.approx(2.88 / 0.8 * 1.3)


def test_three_year_cost_is_one_off_plus_36_months():
    """Seed 000 成本分析: electricity 3,370 CNY/month is 121,320 CNY over 3 years."""
    a = advisor.Assumptions(software_monthly_cny=0, maintenance_monthly_cny=0, staff_monthly_cny=0,
                            infrastructure_cny=0, deployment_cny=0, maintenance_once_cny=0)
    c = advisor.cost(175_000, 3_370, a)
    assert c["total_cny"] == pytest.approx(175_000 + 121_320)
    c5 = advisor.cost(175_000, 3_370, a.model_copy(update={"years": 5}))
    assert c5["total_cny"] == pytest.approx(175_000 + 3_370 * 60)


def test_budget_caps_the_tier_and_says_so():
    res = advisor.advise(50, "heavy", budget_cny=advisor.parse_budget("25万"))
    assert res["tier"] == "standard"
    assert any("budget" in w and "high-performance" in w for w in res["why"])
    assert res["model"]["fits"] is True


def test_assumptions_override_the_figures():
    base = advisor.advise(50, "normal")
    cheap = advisor.advise(50, "normal", assumptions=advisor.parse_assumptions(["electricity_cny_per_kwh=0.6"]))
    assert cheap["electricity_year_cny"] == pytest.approx(base["electricity_year_cny"] / 2)
    assert cheap["assumptions"]["electricity_cny_per_kwh"] == 0.6


@pytest.mark.parametrize(("text", "value"), [("200000", 200_000), ("20万", 200_000), ("200k", 200_000)])
def test_budget_forms(text, value):
    assert advisor.parse_budget(text) == value


def test_cli_prints_tier_power_ups_and_cost():
    r = runner.invoke(app, ["advise", "--team", "50", "--usage", "normal"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for word in ("standard", "UPS", "kWh/month", "3-year cost", "assumptions"):
        assert word in r.output
    j = runner.invoke(app, ["advise", "--team", "10", "--usage", "light", "--json"], catch_exceptions=False)
    data = json.loads(j.output)
    assert data["tier"] == "entry" and data["cost"]["months"] == 36


@pytest.mark.parametrize(("args", "first_line"), [
    (["--team", "0"], "error: --team: must be >= 1"),
    (["--team", "5", "--budget", "lots"], "error: --budget: 'lots' is not an amount"),
    (["--team", "5", "--assume", "years=0"], "error: --assume: years:"),
    (["--team", "5", "--assume", "nonsense"], "error: --assume: 'nonsense': write key=value"),
])
def test_cli_bad_input_exits_2_with_one_line(args, first_line):
    r = runner.invoke(app, ["advise", *args], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.output.startswith(first_line), r.output


def test_bad_team_in_the_library_names_the_field():
    with pytest.raises(LlmrackError, match="--team"):
        advisor.advise(0, "normal")
