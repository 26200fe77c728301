"""Customs rules against hand-computed figures from the rules' own texts.

Every expected figure below is worked out by hand in a comment, from the rule as enacted and
the rates and exchange rates in ``market/data/world.toml`` (checked first, so that a change of
data fails here with a clear message instead of silently moving the figures). Nothing is
recomputed with the code's own helpers.

Sources (also cited in world.toml and /work/shared/design/reference-figures.md):
* Russia (EAEU Council decision 107 of 2017, from 1 Jan 2020): goods for personal use sent by
  carrier or post are duty-free up to EUR 200 and 31 kg a parcel; above, one rate of 15% of the
  value over EUR 200, but not less than EUR 2 per kg over 31 kg; no separate VAT. From 31 Mar
  2022 to 31 Mar 2024 the value threshold was EUR 1,000 (EEC Council decision 35 of 2022).
* China (MOF 2018 No. 49, from 1 Jan 2019): cross-border retail imports within RMB 5,000 a
  transaction: 0% tariff, import VAT and consumption tax at 70% (13% x 0.7 = 9.1%); above the
  single limit, full duty and VAT.
* US: $200 de minimis (from 1993), $800 (since 10 Mar 2016; "not exceeding"), withdrawn for
  goods of China from 2 May 2025 (EO 14256), suspended for all countries from 29 Aug 2025 (EO
  14324). Goods of China pay MFN + Section 301 (apparel 7.5%, List 4A) + the IEEPA duties (30%
  from 14 May 2025: 20% fentanyl, 10% reciprocal). Postal items then pay IEEPA duties only, either
  ad valorem at the country's effective IEEPA rate or, for six months, $80 / $160 / $200 an item
  for an IEEPA rate below 16% / between 16 and 25% / above 25%, by the method the postal operator
  declared for the period (the world file: ad valorem for China). From 24 Feb 2026 the IEEPA
  duties are replaced by a 10% Section 122 surcharge, and postal items pay that rate.
* EU: consignments not exceeding EUR 150 are duty-free, with VAT due on all (since 1 Jul 2021);
  from 1 Jul 2026 a flat EUR 3 duty an item (category) on them, until 1 Jul 2028 (then full duty).
* UK: goods of GBP 135 or less pay no customs duty, VAT is charged (since 1 Jan 2021).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pytest import approx
from scipy import stats

from market.world.customs import ClearanceTables, DutyCalculator, triangular, whole_days
from market.world import REGIMES
from market.world.spec import PerItemBand

D = dt.date


def assess(calc, territory, day, regime, values, weights=1.0, category="apparel",
           origin="CN", rule=None):
    """(duty, vat) lists for parcels of one category and origin (codes looked up by name)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), (n,)).copy()
    cat = np.full(n, calc.categories.index(category))
    org = np.full(n, calc.territories.index(origin))
    duty, vat = calc.assess(territory, day, regime, values, weights, cat, org, rule=rule)
    return duty.tolist(), vat.tolist()


def test_world_figures_the_hand_computations_assume(world):
    """The exchange rates and duty rates the figures below were worked out with."""
    assert world.spec.fx["EUR"] == 1.08 and world.spec.fx["GBP"] == 1.27
    assert world.spec.fx["CNY"] == 0.14 and world.spec.fx["USD"] == 1.0
    us = {r.start: r for r in world.spec.duty_rules["US"]}
    assert us[D(1993, 12, 8)].de_minimis == 200.0 and us[D(2016, 3, 10)].de_minimis == 800.0
    assert us[D(2016, 3, 10)].duty["apparel"] == 0.16 and us[D(2016, 3, 10)].extra_by_origin == {}
    section_301 = {"electronics": 0.075, "apparel": 0.075, "cosmetics": 0.25, "home": 0.25, "toys": 0.0}
    assert us[D(2020, 2, 14)].extra_by_origin_category == {"CN": section_301}
    assert us[D(2025, 5, 2)].extra_by_origin == {"CN": 1.45}
    assert us[D(2025, 8, 29)].extra_by_origin == {"CN": 0.30}
    assert us[D(2025, 8, 29)].extra_by_origin_category == {"CN": section_301}
    assert us[D(2025, 8, 29)].postal.method == {"CN": "ad_valorem"}
    assert us[D(2026, 2, 24)].extra_by_origin == {"CN": 0.10}
    assert us[D(2025, 8, 29)].duty == {"electronics": 0.02, "apparel": 0.16, "cosmetics": 0.03,
                                       "home": 0.04, "toys": 0.0}
    eu = world.spec.duty_rules["EU"]
    assert [r.duty["apparel"] for r in eu] == [0.12] * 3 and eu[0].duty["toys"] == 0.03
    ru = world.spec.duty_rules["RU"][0]
    assert (ru.duty["electronics"], ru.duty["apparel"], ru.vat) == (0.05, 0.10, 0.20)
    assert (ru.de_minimis, ru.de_minimis_weight, ru.excess_rate, ru.excess_per_kg) == (200.0, 31.0, 0.15, 2.0)
    cn = world.spec.duty_rules["CN"][0]
    assert (cn.duty["cosmetics"], cn.duty["electronics"], cn.vat) == (0.03, 0.05, 0.13)
    uk = world.spec.duty_rules["UK"][0]
    assert (uk.duty["apparel"], uk.vat) == (0.12, 0.20)


# ---- Russia: EUR 200 / 31 kg, 15% of the excess ----------------------------------------
RU_DAY = D(2024, 6, 1)


def test_russia_value_threshold_below_at_above(calc):
    # threshold: EUR 200 x 1.08 USD/EUR = USD 216.00 ("not exceeding": 216.00 is free)
    # 216.01: 15% x (216.01 - 216.00) = 0.0015;  316.00: 15% x 100.00 = 15.00; no VAT at all
    duty, vat = assess(calc, "RU", RU_DAY, "postal", [215.99, 216.00, 216.01, 316.00], weights=2.0)
    assert duty == approx([0.0, 0.0, 0.0015, 15.0], abs=1e-9)
    assert vat == [0.0, 0.0, 0.0, 0.0]


def test_russia_weight_threshold_below_at_above(calc):
    # EUR 2 per kg over 31 kg = 2 x 1.08 = USD 2.16 a kg; value USD 50 is under 216
    # 30.99 kg, 31.0 kg: free ("not exceeding"); 31.01 kg: 0.01 x 2.16 = 0.0216; no VAT
    duty, vat = assess(calc, "RU", RU_DAY, "postal", [50.0] * 3, weights=[30.99, 31.0, 31.01])
    assert duty == approx([0.0, 0.0, 0.0216])
    assert vat == [0.0] * 3


def test_russia_greater_of_value_and_weight_excess(calc):
    # 226 USD, 41 kg: 15% x 10 = 1.50 vs 10 kg x 2.16 = 21.60 -> 21.60
    # 616 USD, 36 kg: 15% x 400 = 60.00 vs  5 kg x 2.16 = 10.80 -> 60.00
    duty, _ = assess(calc, "RU", RU_DAY, "express", [226.0, 616.0], weights=[41.0, 36.0])
    assert duty == approx([21.6, 60.0])


def test_russia_thousand_euro_threshold_from_31_march_2022_to_31_march_2024(calc):
    # EUR 1,000 x 1.08 = USD 1,080: free at 1,080.00; 1,180 -> 15% x 100 = 15.00
    # 30 Mar 2022 and 1 Apr 2024: EUR 200 (USD 216): 1,080 -> 15% x 864 = 129.60
    for day in (D(2022, 3, 31), D(2023, 6, 1), D(2024, 3, 31)):
        duty, vat = assess(calc, "RU", day, "postal", [1080.0, 1180.0], weights=2.0)
        assert duty == approx([0.0, 15.0]) and vat == [0.0, 0.0], day
    for day in (D(2022, 3, 30), D(2024, 4, 1)):
        assert assess(calc, "RU", day, "postal", [1080.0], weights=2.0)[0] == approx([129.6]), day
    # the weight rule holds throughout: 41 kg at USD 50 -> 10 x 2.16 = 21.60
    assert assess(calc, "RU", D(2023, 6, 1), "postal", [50.0], weights=41.0)[0] == approx([21.6])


def test_russia_weight_excess_is_two_euro_a_kg_as_enacted(calc):
    # EUR 2 x 1.08 = USD 2.16 a kg: 31.5 kg -> 1.08; 41 kg -> 21.60
    # 416 USD, 41 kg: max(15% x 200 = 30.00, 21.60) = 30.00
    duty, _ = assess(calc, "RU", RU_DAY, "postal", [50.0, 50.0, 416.0], weights=[31.5, 41.0, 41.0])
    assert duty == approx([1.08, 21.6, 30.0])


def test_russia_rule_ignores_category_and_origin_but_not_regime(calc):
    # postal and express parcels: the single 15% rate whatever the goods: 316 USD -> 15.00
    for category in ("electronics", "apparel", "toys"):
        for origin in ("CN", "JP"):
            duty, vat = assess(calc, "RU", RU_DAY, "postal", [316.0], category=category, origin=origin)
            assert duty == approx([15.0]) and vat == [0.0]
    # bulk (general trade) entries pay the tariff and VAT on the customs value plus duty:
    # electronics 5% of 10,000 = 500, VAT 20% x 10,500 = 2,100; apparel 10%: 1,000, 20% x 11,000
    duty, vat = assess(calc, "RU", RU_DAY, "general", [10_000.0], weights=500.0, category="electronics")
    assert duty == approx([500.0]) and vat == approx([2100.0])
    duty, vat = assess(calc, "RU", RU_DAY, "general", [10_000.0], weights=500.0, category="apparel")
    assert duty == approx([1000.0]) and vat == approx([2200.0])


@pytest.mark.parametrize("regime", ["bonded_entry", "domestic", "export"])
def test_no_import_duty_for_bonded_domestic_or_export(calc, regime):
    duty, vat = assess(calc, "RU", RU_DAY, regime, [5000.0, 10.0], weights=[100.0, 1.0])
    assert duty == [0.0, 0.0] and vat == [0.0, 0.0]
    duty, vat = assess(calc, "EU", D(2027, 1, 1), regime, [100.0])
    assert duty == [0.0] and vat == [0.0]


def test_no_parcels_no_figures(calc):
    duty, vat = assess(calc, "EU", D(2027, 1, 1), "postal", [])
    assert duty == [] and vat == []


# ---- China: cross-border retail tax within RMB 5,000 -----------------------------------
CN_DAY = D(2024, 6, 1)


def test_china_cross_border_retail_tax_and_single_order_limit(calc):
    # limit RMB 5,000 x 0.14 USD/RMB = USD 700; combined tax 13% VAT x 70% = 9.1% of the value
    #   100    -> duty 0, tax 9.10;  699.99 -> 0.091 x 699.99 = 63.69909;  700 -> 63.70
    # above the limit, full duty (cosmetics 3%) and VAT 13% on value + duty:
    #   700.01 -> duty 21.0003, VAT 0.13 x 721.0103 = 93.731339
    #   1000   -> duty 30.00,   VAT 0.13 x 1030 = 133.90
    duty, vat = assess(calc, "CN", CN_DAY, "retail_from_bonded",
                       [100.0, 699.99, 700.0, 700.01, 1000.0], category="cosmetics", origin="JP")
    assert duty == approx([0.0, 0.0, 0.0, 21.0003, 30.0])
    assert vat == approx([9.1, 63.69909, 63.7, 93.731339, 133.9])


@pytest.mark.parametrize("regime", ["postal", "express", "retail_from_bonded"])
def test_china_retail_tax_same_for_direct_regimes_and_categories(calc, regime):
    # 9.1% of 200 = 18.20 whatever the category, within the limit
    for category in ("electronics", "toys"):
        duty, vat = assess(calc, "CN", CN_DAY, regime, [200.0], category=category, origin="US")
        assert duty == [0.0] and vat == approx([18.2])


def test_china_general_trade_and_bonded_zone(calc):
    # general trade: electronics 5% of 1,000 = 50; VAT 13% x 1,050 = 136.50
    duty, vat = assess(calc, "CN", CN_DAY, "general", [1000.0], category="electronics", origin="US")
    assert duty == approx([50.0]) and vat == approx([136.5])
    # goods entering the bonded zone pay nothing until they leave it
    duty, vat = assess(calc, "CN_BONDED", CN_DAY, "bonded_entry", [1000.0], origin="US")
    assert duty == [0.0] and vat == [0.0]


# ---- United States ----------------------------------------------------------------------
def test_us_800_de_minimis_before_may_2025(calc):
    # 800.00 is free ("not exceeding $800"); above: MFN apparel 16% + Section 301 7.5% (List 4A)
    # on goods of China: 800.01 -> 0.235 x 800.01 = 188.00235; 1000 -> 235.00;
    # from Japan 16% x 1000 = 160.00
    duty, vat = assess(calc, "US", D(2024, 6, 1), "express", [800.0, 800.01, 1000.0])
    assert duty == approx([0.0, 188.00235, 235.0]) and vat == [0.0] * 3
    duty, _ = assess(calc, "US", D(2024, 6, 1), "postal", [1000.0], origin="JP")
    assert duty == approx([160.0])


def test_us_de_minimis_ends_for_china_on_2_may_2025(calc):
    # 1 May 2025: a $100 parcel from China is still free
    assert assess(calc, "US", D(2025, 5, 1), "express", [100.0])[0] == [0.0]
    # 2 May 2025: MFN 16% + Section 301 7.5% + IEEPA 145% = 168.5% x 100 = 168.50 for China;
    # Japan keeps the $800 exemption
    assert assess(calc, "US", D(2025, 5, 2), "express", [100.0])[0] == approx([168.5])
    duty, _ = assess(calc, "US", D(2025, 5, 2), "express", [100.0, 800.0, 800.01], origin="JP")
    assert duty == approx([0.0, 0.0, 0.16 * 800.01])   # 128.0016


def test_us_mixed_categories_and_origins_in_one_call(calc, world):
    # 2 May 2025, express: electronics CN (2% + 7.5% + 145%) x 500 = 772.50; apparel JP 500 <= 800
    # -> 0; toys CN (0% + 0% + 145%) x 50 = 72.50; electronics JP 900 -> 2% x 900 = 18
    cats = [world.categories.index(c) for c in ("electronics", "apparel", "toys", "electronics")]
    orgs = [world.territories.index(t) for t in ("CN", "JP", "CN", "JP")]
    duty, vat = DutyCalculator(world).assess("US", D(2025, 5, 2), "express",
                                             np.array([500.0, 500.0, 50.0, 900.0]), np.ones(4),
                                             np.array(cats), np.array(orgs))
    assert duty.tolist() == approx([772.5, 0.0, 72.5, 18.0]) and vat.tolist() == [0.0] * 4


def test_us_de_minimis_suspended_for_all_on_29_aug_2025(calc):
    # 28 Aug 2025: a $100 parcel from Japan is still free; 29 Aug: 16% x 100 = 16.00 by express
    assert assess(calc, "US", D(2025, 8, 28), "express", [100.0], origin="JP")[0] == [0.0]
    assert assess(calc, "US", D(2025, 8, 29), "express", [100.0], origin="JP")[0] == approx([16.0])


def _with_method(rule, origin: str, method: str):
    """A copy of a rule whose postal duty has ``origin``'s operator declare ``method``."""
    postal = rule.postal.model_copy(update={"method": {**rule.postal.method, origin: method}})
    return rule.model_copy(update={"postal": postal})


def test_us_postal_duty_eo_14324_by_the_operators_method(calc, world):
    # goods of China, IEEPA 30%. China Post declared ad valorem (world file): every item pays
    # 30% of its value, MFN and Section 301 not added: toys $100 -> 30.00; apparel $1,000 -> 300.00
    day = D(2025, 8, 29)
    assert assess(calc, "US", day, "postal", [100.0], category="toys")[0] == approx([30.0])
    assert assess(calc, "US", day, "postal", [10.0, 1000.0])[0] == approx([3.0, 300.0])
    # had it declared the per-item method, every item pays $200 (30% > 25%), a $10 item too:
    # the method is the operator's for the period, not the cheaper one per item
    specific = _with_method(world.duty_rule("US", day), "CN", "specific")
    assert assess(calc, "US", day, "postal", [10.0, 1000.0], rule=specific)[0] == approx([200.0, 200.0])
    # express is not postal: MFN 16% + Section 301 7.5% + IEEPA 30% = 53.5% x 1000 = 535.00
    assert assess(calc, "US", day, "express", [1000.0])[0] == approx([535.0])


def _us_rule(calc, extra_jp, method="specific"):
    """The EO 14324 rule set with Japan given an IEEPA rate ``extra_jp`` (MFN toys 0%) and its
    postal operator declaring ``method``."""
    base = calc.world.duty_rule("US", D(2025, 8, 29))
    rule = base.model_copy(update={"extra_by_origin": {"CN": 0.30, "JP": extra_jp}})
    return _with_method(rule, "JP", method)


@pytest.mark.parametrize("ieepa, per_item", [(0.10, 80.0), (0.20, 160.0), (0.25, 160.0), (0.30, 200.0)])
def test_us_postal_per_item_bands(calc, ieepa, per_item):
    # toys have no MFN duty, so the rate is the IEEPA rate; $2,000 parcels: ad valorem
    # 200 / 400 / 500 / 600 are all above the per-item amounts $80 / $160 / $160 / $200
    duty, _ = assess(calc, "US", D(2025, 9, 1), "postal", [2000.0], category="toys", origin="JP",
                     rule=_us_rule(calc, ieepa))
    assert duty == approx([per_item])


def test_us_postal_per_item_band_at_exactly_16_percent(calc):
    # IEEPA 16%, $2,000 toys: ad valorem 320 vs $160 -> 160
    duty, _ = assess(calc, "US", D(2025, 9, 1), "postal", [2000.0], category="toys", origin="JP",
                     rule=_us_rule(calc, 0.16))
    assert duty == approx([160.0])


def test_us_postal_items_pay_ieepa_duties_only(calc):
    # apparel from China, IEEPA 30%: $100 -> 30% x 100 = 30.00 (not with MFN: 46.00)
    # ad valorem (China Post's method): $1,000 -> 300.00 (not with MFN: 460.00). (The per-item
    # option was to end on 28 Feb 2026; from 24 Feb 2026 the IEEPA duties were gone: see
    # test_us_section_122_surcharge_from_24_february_2026.)
    # Japan at IEEPA 10%, apparel $2,000: $80 band (not banded by 16% + 10% = 26%: $200)
    assert assess(calc, "US", D(2025, 8, 29), "postal", [100.0])[0] == approx([30.0])
    assert assess(calc, "US", D(2025, 9, 1), "postal", [1000.0])[0] == approx([300.0])
    duty, _ = assess(calc, "US", D(2025, 9, 1), "postal", [2000.0], origin="JP",
                     rule=_us_rule(calc, 0.10))
    assert duty == approx([80.0])


def test_us_before_the_first_rule(calc):
    # 1 Jun 2015, apparel from Japan, $500 > $200: 16% x 500 = 80.00
    assert assess(calc, "US", D(2015, 6, 1), "express", [500.0], origin="JP")[0] == approx([80.0])


def test_per_item_amount_above_the_last_band_bound_is_the_last_amount(calc):
    # a rule whose bands stop at 25%: a 30% rate gets the last amount ($160); $2,000 parcel
    rule = _us_rule(calc, 0.30)
    bands = [PerItemBand(below=0.16, amount=80.0), PerItemBand(up_to=0.25, amount=160.0)]
    rule = rule.model_copy(update={"postal": rule.postal.model_copy(update={"per_item": bands})})
    duty, _ = assess(calc, "US", D(2025, 9, 1), "postal", [2000.0], category="toys", origin="JP", rule=rule)
    assert duty == approx([160.0])


# ---- European Union ---------------------------------------------------------------------
def test_eu_150_euro_threshold_vat_on_all(calc):
    # threshold EUR 150 x 1.08 = USD 162.00; VAT 21% on all parcels (on value + duty above)
    #   100    -> duty 0,            VAT 21.00
    #   161.99 -> duty 0,            VAT 0.21 x 161.99 = 34.0179
    #   162.00 -> duty 0,            VAT 34.02
    #   162.01 -> 12% x 162.01 = 19.4412, VAT 0.21 x 181.4512 = 38.104752
    #   500    -> 60.00,             VAT 0.21 x 560 = 117.60
    duty, vat = assess(calc, "EU", D(2024, 6, 1), "postal", [100.0, 161.99, 162.0, 162.01, 500.0])
    assert duty == approx([0.0, 0.0, 0.0, 19.4412, 60.0])
    assert vat == approx([21.0, 34.0179, 34.02, 38.104752, 117.6])


def test_eu_three_euro_duty_from_1_july_2026(calc):
    # 30 Jun 2026: nothing yet
    assert assess(calc, "EU", D(2026, 6, 30), "postal", [100.0])[0] == [0.0]
    # 1 Jul 2026: EUR 3 x 1.08 = USD 3.24 an item at or below EUR 150; VAT 21% x 100 = 21.00
    duty, vat = assess(calc, "EU", D(2026, 7, 1), "express", [100.0, 162.0, 162.01])
    assert duty == approx([3.24, 3.24, 19.4412])
    assert vat[:2] == approx([21.0, 0.21 * 162.0])      # 34.02
    # above the threshold toys pay 3%: 500 -> 15.00, VAT 0.21 x 515 = 108.15
    duty, vat = assess(calc, "EU", D(2026, 7, 1), "postal", [500.0], category="toys")
    assert duty == approx([15.0]) and vat == approx([108.15])


def test_eu_full_duty_from_1_july_2028(calc):
    # 30 Jun 2028: still the flat 3.24; 1 Jul 2028: 12% x 100 = 12.00, VAT 0.21 x 112 = 23.52
    assert assess(calc, "EU", D(2028, 6, 30), "postal", [100.0])[0] == approx([3.24])
    duty, vat = assess(calc, "EU", D(2028, 7, 1), "postal", [100.0])
    assert duty == approx([12.0]) and vat == approx([23.52])
    # electronics 2% of 10 = 0.20, VAT 0.21 x 10.20 = 2.142
    duty, vat = assess(calc, "EU", D(2028, 7, 1), "postal", [10.0], category="electronics")
    assert duty == approx([0.2]) and vat == approx([2.142])


def test_eu_general_trade_pays_full_duty(calc):
    # a bulk entry is not a low-value parcel: 12% x 5,000 = 600, VAT 0.21 x 5,600 = 1,176
    duty, vat = assess(calc, "EU", D(2026, 7, 1), "general", [5000.0], weights=100.0)
    assert duty == approx([600.0]) and vat == approx([1176.0])


# ---- United Kingdom ---------------------------------------------------------------------
def test_uk_135_pound_threshold(calc):
    # threshold GBP 135 x 1.27 = USD 171.45; VAT 20%
    #   100    -> duty 0, VAT 20.00;  171.45 -> duty 0, VAT 34.29
    #   171.46 -> 12% x 171.46 = 20.5752, VAT 0.2 x 192.0352 = 38.40704
    #   200    -> 24.00, VAT 0.2 x 224 = 44.80
    duty, vat = assess(calc, "UK", D(2024, 6, 1), "postal", [100.0, 171.45, 171.46, 200.0])
    assert duty == approx([0.0, 0.0, 20.5752, 24.0])
    assert vat == approx([20.0, 34.29, 38.40704, 44.8])


def test_no_vat_below_threshold_when_the_rule_says_so(calc, world):
    # a rule with 10% VAT that exempts low-value parcels from it (as Australia's GST did
    # before Jul 2018): 100 -> nothing; 200 over a 150 threshold: 12% x 200 = 24, VAT 0.1 x 224
    rule = world.duty_rule("UK", D(2024, 6, 1)).model_copy(
        update={"vat": 0.10, "vat_below_de_minimis": False, "de_minimis": 150.0, "currency": "USD"})
    duty, vat = assess(calc, "UK", D(2024, 6, 1), "postal", [100.0, 200.0], rule=rule)
    assert duty == approx([0.0, 24.0]) and vat == approx([0.0, 22.4])


# ---- clearance tables and the random helpers ---------------------------------------------
def test_clearance_tables_hold_the_world_file_figures(world):
    ct = ClearanceTables(world)
    t = {c: world.territories.index(c) for c in world.territories}
    g = {r: REGIMES.index(r) for r in REGIMES}
    # [customs.US]: clearance postal [1, 2, 5]; inspection express 0.05; broker fee express 2.0
    assert ct.clearance[t["US"], g["postal"]].tolist() == [1.0, 2.0, 5.0]
    assert ct.has_clearance[t["US"], g["postal"]] and not ct.has_clearance[t["US"], g["bonded_entry"]]
    assert ct.inspection[t["US"], g["express"]] == 0.05 and ct.broker_fee[t["US"], g["express"]] == 2.0
    # [customs.RU]: inspection days [1, 3, 8], hold [1, 4, 10], $800 a batch for inspection and agent
    assert ct.inspection_days[t["RU"]].tolist() == [1.0, 3.0, 8.0]
    assert ct.hold_days[t["RU"]].tolist() == [1.0, 4.0, 10.0]
    assert ct.inspection_fee_shipment[t["RU"]] == 800.0 and ct.broker_fee_shipment[t["RU"]] == 800.0
    # [customs.CN]: export clearance [0, 0.02, 0.1] days (about 1 h on average, GAC 2022), fee 0.1
    # a parcel, 80 a shipment; 2 brokers of 3000
    assert ct.export_clearance[t["CN"]].tolist() == [0.0, 0.02, 0.1]
    assert ct.export_fee[t["CN"]] == 0.1 and ct.export_fee_shipment[t["CN"]] == 80.0
    assert ct.broker_capacity[t["CN"]] == 3000.0 and ct.brokers_per_point[t["CN"]] == 2
    # [customs.CN_BONDED]: bonded entry [0, 1, 2]; JP has no import clearance at all
    assert ct.clearance[t["CN_BONDED"], g["bonded_entry"]].tolist() == [0.0, 1.0, 2.0]
    assert not ct.has_clearance[t["JP"]].any()
    # categories: electronics and cosmetics 2.5x inspection, toys 1.2x
    mult = dict(zip(world.categories, ct.inspection_multiplier))
    assert (mult["electronics"], mult["cosmetics"], mult["apparel"], mult["toys"]) == (2.5, 2.5, 1.0, 1.2)


@pytest.mark.parametrize("lo, mode, hi", [(1.0, 2.0, 5.0), (0.0, 0.0, 1.5), (1.0, 3.0, 3.0), (2.0, 2.5, 7.0)])
def test_triangular_inverse_cdf_matches_scipy(lo, mode, hi):
    u = np.linspace(0.0, 1.0, 101)
    expected = stats.triang(c=(mode - lo) / (hi - lo), loc=lo, scale=hi - lo).ppf(u)
    assert triangular(lo, mode, hi, u) == approx(expected, abs=1e-12)
    # one draw at a time (the float path) gives the same figures
    assert [triangular(lo, mode, hi, float(x)) for x in u] == approx(expected.tolist(), abs=1e-12)
    # arrays of parameters, one triangle per draw
    n = u.size
    got = triangular(np.full(n, lo), np.full(n, mode), np.full(n, hi), u)
    assert got == approx(expected, abs=1e-12)


def test_triangular_degenerate_is_the_point():
    assert triangular(3.0, 3.0, 3.0, 0.7) == 3.0
    assert triangular(np.array([3.0, 0.0]), np.array([3.0, 0.0]), np.array([3.0, 0.0]),
                      np.array([0.2, 0.9])).tolist() == [3.0, 0.0]


def test_whole_days_rounds_to_neighbours_and_keeps_the_mean():
    rng = np.random.default_rng(5)
    x = np.full(200_000, 2.3)
    d = whole_days(x, rng)
    assert d.dtype == np.int64 and set(np.unique(d).tolist()) == {2, 3}
    # P(3) = 0.3: the mean is 2.3 within 5 standard errors (sd 0.458 / sqrt(200,000) = 0.001)
    assert abs(d.mean() - 2.3) < 0.005
    assert whole_days(np.array([0.0, 4.0, 7.0]), rng).tolist() == [0, 4, 7]


# ---- rule variants the world file does not use yet, and types ----------------------------
def test_china_single_order_limit_is_inclusive_at_the_exact_float_limit(calc):
    # the limit converted as the code must: RMB 5,000 x 0.14 (700.0000000000001 in floats);
    # a parcel of exactly that value is within the limit: 9.1% tax, no duty
    at_limit = 5000.0 * 0.14
    duty, vat = assess(calc, "CN", CN_DAY, "express", [at_limit], category="cosmetics", origin="JP")
    assert duty == [0.0] and vat == approx([0.091 * 700.0])


def test_excess_rules_with_only_a_value_share_or_only_a_per_kg_charge(calc, world):
    base = world.duty_rule("RU", RU_DAY)
    # only 15% of the excess value (no per-kg charge): 217 USD -> 0.15 x 1 = 0.15; 316 USD at
    # 41 kg -> 15.00 (the weight over 31 kg costs nothing by itself; the parcel is not exempt)
    value_only = base.model_copy(update={"excess_per_kg": None})
    duty, vat = assess(calc, "RU", RU_DAY, "postal", [217.0, 316.0], weights=[2.0, 41.0], rule=value_only)
    assert duty == approx([0.15, 15.0]) and vat == [0.0, 0.0]
    # only EUR 2 per kg over 31 kg: a 316 USD parcel of 2 kg pays nothing beyond the threshold
    # value... the value excess has no rate: 0; 41 kg -> 10 x 2.16 = 21.60
    kg_only = base.model_copy(update={"excess_rate": None})
    duty, _ = assess(calc, "RU", RU_DAY, "postal", [316.0, 100.0], weights=[2.0, 41.0], rule=kg_only)
    assert duty == approx([0.0, 21.6])


def test_per_item_amounts_are_converted_from_the_rule_currency(calc):
    # the same bands stated in EUR: the $80 band becomes EUR 80 x 1.08 = USD 86.40
    rule = _us_rule(calc, 0.10).model_copy(update={"currency": "EUR"})
    duty, _ = assess(calc, "US", D(2025, 9, 1), "postal", [2000.0], category="toys", origin="JP", rule=rule)
    assert duty == approx([86.4])


def test_a_territory_without_rates_charges_nothing(calc):
    # Japan (an export-only territory here): no duty table, no VAT, no threshold
    duty, vat = assess(calc, "JP", D(2024, 6, 1), "express", [500.0, 5.0], category="electronics", origin="CN")
    assert duty == [0.0, 0.0] and vat == [0.0, 0.0]


def test_triangular_narrow_triangles_and_types(world):
    # widths below one day: [0, 0.5, 1] and [0, 0, 0.5]
    for lo, mode, hi in ((0.0, 0.5, 1.0), (0.0, 0.0, 0.5), (0.2, 0.3, 0.9)):
        u = np.linspace(0.0, 1.0, 41)
        expected = stats.triang(c=(mode - lo) / (hi - lo), loc=lo, scale=hi - lo).ppf(u)
        assert [triangular(lo, mode, hi, float(x)) for x in u] == approx(expected.tolist(), abs=1e-12)
        assert triangular(lo, mode, hi, u) == approx(expected, abs=1e-12)
    ct = ClearanceTables(world)
    assert ct.has_clearance.dtype == bool and ct.brokers_per_point.dtype == np.int64
