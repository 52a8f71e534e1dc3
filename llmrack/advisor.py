"""Selection advisor (seed 000 快速选型指南 / 电力需求与UPS / 成本分析): team and usage -> tier, model, power,
UPS size, electricity per year and the 3-year cost, with every assumption shown and overridable.

The rules, as the seed writes them:
  * Tier by team size (推荐服务器配置: entry 10-30 people, standard 50, high-performance 100+) and usage
    (选型建议 for 50 people: light -> 2x RTX 4090, normal -> 4x, heavy -> 8x). Usage weighs the team:
    light x0.5, normal x1, heavy x2; up to 30 weighted people -> entry, up to 60 -> standard, else
    high-performance (and more than 100 weighted people per high-performance server -> several servers).
  * Power (单机功率计算公式): CPU 300 W + N x GPU board power + memory 100 W + storage 50 W + cooling 150 W is
    the sum; the 20 % redundancy on top is the peak the PSU and UPS must carry.
  * Electricity: peak kW x 720 h a month (the seed's table: 2.22 kW -> 1,600 kWh) x 1.2 CNY/kWh.
  * UPS: peak kW / power factor 0.8 x 1.3 (风险: 电力容量预留30%冗余), rounded up to a standard size.
  * 3-year TCO (TCO计算公式): one-off (server, infrastructure, software, deployment, maintenance contract) +
    monthly (software, electricity, maintenance, staff) x 36.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmrack.catalogue.gpus import find_gpu
from llmrack.config import load_tier
from llmrack.errors import LlmrackError
from llmrack.models import plan_for

Usage = Literal["light", "normal", "heavy"]
USAGE_WEIGHT: dict[str, float] = {"light": 0.5, "normal": 1.0, "heavy": 2.0}
# (tier, most weighted people it serves, seed 000 price estimate of the server in CNY, seed's model advice)
TIERS: tuple[tuple[str, float, int, str], ...] = (
    ("entry", 30, 74_000, "Llama-3-8B, Qwen-14B, DeepSeek-16B"),
    ("standard", 60, 172_900, "Llama-70B, Qwen-72B, DeepSeek-R1"),
    ("high-performance", 100, 487_000, "Llama-70B-128K, DeepSeek-V3, several models at once"),
)
UPS_SIZES_KVA = (1, 2, 3, 5, 6, 10, 15, 20, 30, 40, 60, 80, 100)


class Assumptions(BaseModel):
    """Numbers the advice rests on (seed 000 defaults). Override any with ``--assume key=value``."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_w: float = Field(300, ge=0, description="CPU power, W")
    memory_w: float = Field(100, ge=0, description="Memory power, W")
    storage_w: float = Field(50, ge=0, description="Storage power, W")
    cooling_w: float = Field(150, ge=0, description="Fans / cooling power, W")
    gpu_w: float | None = Field(None, ge=0, description="Board power per GPU, W (default: the GPU's rating)")
    redundancy: float = Field(0.20, ge=0, le=2, description="Peak margin over the sum (seed: 20 %)")
    hours_per_month: float = Field(720, gt=0, le=744, description="Hours the server runs per month")
    electricity_cny_per_kwh: float = Field(1.2, ge=0, description="Electricity price, CNY/kWh")
    ups_power_factor: float = Field(0.8, gt=0, le=1, description="UPS output power factor (kW per kVA)")
    ups_headroom: float = Field(0.30, ge=0, le=2, description="UPS capacity kept free (seed: 30 %)")
    server_cny: float | None = Field(None, ge=0, description="Server with GPUs, CNY (default: the seed's tier price)")
    infrastructure_cny: float = Field(30_000, ge=0, description="Rack, UPS and network, one-off, CNY")
    software_once_cny: float = Field(0, ge=0, description="Commercial software, one-off, CNY")
    deployment_cny: float = Field(10_000, ge=0, description="Vendor on-site deployment, CNY")
    maintenance_once_cny: float = Field(10_000, ge=0, description="Maintenance contract, one-off, CNY")
    software_monthly_cny: float = Field(500, ge=0, description="Software licences per month, CNY")
    maintenance_monthly_cny: float = Field(1_500, ge=0, description="Maintenance per month, CNY")
    staff_monthly_cny: float = Field(16_667, ge=0, description="Operations staff share per month, CNY")
    years: int = Field(3, ge=1, le=10, description="Years the total cost covers")


def parse_assumptions(items: list[str]) -> Assumptions:
    """``["electricity_cny_per_kwh=0.8", ...]`` -> Assumptions; bad keys or values raise (field ``--assume``)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value.strip():
            raise LlmrackError(f"{item!r}: write key=value", field="--assume")
        if key not in Assumptions.model_fields:
            known = ", ".join(Assumptions.model_fields)
            raise LlmrackError(f"unknown assumption {key!r} (known: {known})", field="--assume")
        values[key] = value.strip()
    try:
        return Assumptions.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LlmrackError(f"{first['loc'][0]}: {first['msg']}", field="--assume") from None


def parse_budget(text: str | None) -> float | None:
    """``200000``, ``20万``, ``200k``, ``1.5m`` -> CNY."""
    if text is None:
        return None
    raw = text.strip().lower().replace(",", "").replace("¥", "").replace("cny", "")
    scale = 1.0
    for suffix, mult in (("万", 10_000), ("w", 10_000), ("k", 1_000), ("m", 1_000_000)):
        if raw.endswith(suffix):
            raw, scale = raw[: -len(suffix)], mult
            break
    try:
        value = float(raw) * scale
    except ValueError:
        raise LlmrackError(f"{text!r} is not an amount (e.g. 200000, 20万, 200k)", field="--budget") from None
    if not value > 0:
        raise LlmrackError(f"must be > 0, got {text!r}", field="--budget")
    return value


def pick_tier(team: int, usage: str) -> tuple[str, int, str]:
    """(tier, servers, why) for a team of ``team`` people at ``usage``."""
    weighted = team * USAGE_WEIGHT[usage]
    for name, most, _, _ in TIERS:
        if weighted <= most:
            return name, 1, (f"{team} people x {USAGE_WEIGHT[usage]:g} ({usage} use) = {weighted:g} weighted "
                             f"users: up to {most:g} is the {name} tier (seed 000 推荐服务器配置 / 选型建议)")
    servers = math.ceil(weighted / TIERS[-1][1])
    return TIERS[-1][0], servers, (f"{team} people x {USAGE_WEIGHT[usage]:g} ({usage} use) = {weighted:g} weighted "
                                   f"users: more than one high-performance server carries ({TIERS[-1][1]:g}); "
                                   f"{servers} servers behind one gateway (inventories/cluster.py)")


def power(gpu_count: int, gpu_w: float, a: Assumptions) -> dict[str, float]:
    total_w = a.cpu_w + gpu_count * gpu_w + a.memory_w + a.storage_w + a.cooling_w
    peak_kw = total_w * (1 + a.redundancy) / 1000
    month_kwh = peak_kw * a.hours_per_month
    ups_kva = peak_kw / a.ups_power_factor * (1 + a.ups_headroom)
    ups = next((s for s in UPS_SIZES_KVA if s >= ups_kva), math.ceil(ups_kva))
    return {
        "sum_kw": round(total_w / 1000, 3), "peak_kw": round(peak_kw, 3), "month_kwh": round(month_kwh, 1),
        "month_cny": round(month_kwh * a.electricity_cny_per_kwh, 2),
        "year_cny": round(month_kwh * a.electricity_cny_per_kwh * 12, 2),
        "ups_kva_needed": round(ups_kva, 2), "ups_kva": ups,
    }


def cost(server_cny: float, electricity_month_cny: float, a: Assumptions) -> dict[str, float]:
    once = server_cny + a.infrastructure_cny + a.software_once_cny + a.deployment_cny + a.maintenance_once_cny
    monthly = a.software_monthly_cny + electricity_month_cny + a.maintenance_monthly_cny + a.staff_monthly_cny
    months = a.years * 12
    return {"one_off_cny": round(once, 2), "monthly_cny": round(monthly, 2),
            "total_cny": round(once + monthly * months, 2), "months": months}


def advise(team: int, usage: str, *, budget_cny: float | None = None, assumptions: Assumptions | None = None,
           project_dir: Path | None = None) -> dict[str, Any]:
    """The advice as a JSON-ready dict: tier, servers, model, why, power, UPS, electricity, cost, assumptions."""
    if isinstance(team, bool) or not isinstance(team, int) or team < 1:
        raise LlmrackError(f"must be a whole number of people >= 1, got {team!r}", field="--team")
    if usage not in USAGE_WEIGHT:
        raise LlmrackError(f"{usage!r}: choose light, normal or heavy", field="--usage")
    a = assumptions or Assumptions()
    tier, servers, why_tier = pick_tier(team, usage)
    why = [why_tier]
    prices = {name: price for name, _, price, _ in TIERS}
    if budget_cny is not None:
        def one_off(name: str, n: int) -> float:
            return (a.server_cny or prices[name]) * n + a.infrastructure_cny + a.deployment_cny

        if one_off(tier, servers) > budget_cny:
            within = [name for name, _, _, _ in TIERS if one_off(name, 1) <= budget_cny]
            if within:
                why.append(f"the budget of {budget_cny:,.0f} CNY does not reach {tier} x {servers} "
                           f"({one_off(tier, servers):,.0f} CNY with infrastructure and deployment): {within[-1]} "
                           f"is the largest that fits; expect queueing at peak times")
                tier, servers = within[-1], 1
            else:
                why.append(f"the budget of {budget_cny:,.0f} CNY is below the smallest tier ({one_off('entry', 1):,.0f}"
                           " CNY with infrastructure and deployment): seed 000 suggests a desktop with 1x RTX 4090 "
                           "(about 50,000 CNY) for tests; the advice below is the entry tier")
                tier, servers = "entry", 1
        else:
            why.append(f"within the budget of {budget_cny:,.0f} CNY ({one_off(tier, servers):,.0f} CNY one-off for "
                       "the server(s), infrastructure and deployment)")
    profile = load_tier(tier, project_dir)
    gpu = profile.hardware.gpu
    entry = find_gpu(gpu.model)
    gpu_w = a.gpu_w if a.gpu_w is not None else (entry.power_w if entry else 0.0)
    model = profile.stack.models[0]
    plan = plan_for(profile, model, project_dir=project_dir, source=f"tiers/{tier}.yaml")
    seed_models = next(m for name, _, _, m in TIERS if name == tier)
    why.append(f"model {model.name} ({plan.weight_format}, TP {plan.tensor_parallel_size}): the tier's own; "
               f"{'fits' if plan.fits else 'does NOT fit'} {gpu.count} x {gpu.model} {gpu.memory_gib:g} GiB with "
               f"{plan.max_model_len} tokens of context and {plan.concurrency_4k} concurrent 4K requests "
               f"(seed 000 recommends {seed_models})")
    pw = power(gpu.count, gpu_w, a)
    per_server_cny = a.server_cny if a.server_cny is not None else prices[tier]
    c = cost(per_server_cny * servers, pw["month_cny"] * servers, a)
    return {
        "team": team, "usage": usage, "budget_cny": budget_cny, "tier": tier, "servers": servers,
        "description": profile.description, "gpus": {"count": gpu.count, "model": gpu.model,
                                                     "memory_gib": gpu.memory_gib, "board_power_w": gpu_w},
        "model": {"name": model.name, "weight_format": plan.weight_format, "fits": plan.fits,
                  "max_model_len": plan.max_model_len, "concurrency_4k": plan.concurrency_4k},
        "why": why, "power_per_server": pw,
        "electricity_year_cny": round(pw["year_cny"] * servers, 2), "cost": c,
        "per_person_year_cny": round(c["total_cny"] / (team * a.years), 2),
        "assumptions": a.model_dump(mode="json") | {"server_cny": per_server_cny, "gpu_w": gpu_w},
    }
