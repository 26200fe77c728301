"""US duties on goods of China, day by day, against figures worked out by hand from the
enacted rules (the sources are cited in market/data/world.toml, duty_rules.US).

The duty on a good of China is the sum of what is in force on the day: the MFN rate of its
category (world file, indicative: apparel 16%, home 4%, toys 0%), Section 301 by category
(List 3: 10% from 24 Sep 2018, 25% from 10 May 2019; List 4A: 15% from 1 Sep 2019, 7.5% from
14 Feb 2020; toys on the suspended List 4B: 0%) and the IEEPA duties (fentanyl 10% from 4 Feb
2025, 20% from 4 Mar, 10% from 10 Nov 2025; reciprocal 10% from 5 Apr, 84% from 9 Apr, 125%
from 10 Apr, 10% from 14 May 2025), replaced on 24 Feb 2026 by a 10% Section 122 surcharge.
Postal items: from 2 May 2025 (goods of China, $800 or less) 120% or $100 an item, 54% or $100
from 14 May (EO 14256 as amended), in place of every other duty; from 29 Aug 2025 the IEEPA
rate or $80 / $160 / $200 an item (EO 14324); from 24 Feb 2026 the surcharge's rate. Which of
the two the items pay is the method the postal operator declared for the period.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pytest import approx

from market.scenario import ScenarioError
from market.shocks import validate_rule_patch
from market.world import load_world
from market.world.customs import DutyCalculator
from market.world.spec import WorldSpec

D = dt.date


def duty(calc, day, regime, values, category="apparel", origin="CN", rule=None):
    values = np.asarray(values, dtype=np.float64)
    cat = np.full(values.size, calc.categories.index(category))
    org = np.full(values.size, calc.territories.index(origin))
    d, vat = calc.assess("US", day, regime, values, np.ones(values.size), cat, org, rule=rule)
    assert vat.tolist() == [0.0] * values.size          # the US has no import VAT
    return d.tolist()


# an express parcel of $1,000 is above every de minimis: it pays the full stack on each day
# (apparel: MFN 16%, Section 301 List 4A; home: MFN 4%, Section 301 List 3)
STACK = [
    # day,             apparel rate: MFN + 301 + IEEPA          $1,000 apparel   $1,000 home
    (D(2018, 9, 23), "16%",                                     160.0,           40.0),
    (D(2018, 9, 24), "16% (List 3 10% on home: 4% + 10%)",      160.0,           140.0),
    (D(2019, 5, 10), "16% (List 3 25%: 4% + 25%)",              160.0,           290.0),
    (D(2019, 8, 31), "16%",                                     160.0,           290.0),
    (D(2019, 9, 1), "16% + 15% (List 4A)",                      310.0,           290.0),
    (D(2020, 2, 14), "16% + 7.5%",                              235.0,           290.0),
    (D(2025, 2, 3), "16% + 7.5%",                               235.0,           290.0),
    (D(2025, 2, 4), "16% + 7.5% + 10% fentanyl",                335.0,           390.0),
    (D(2025, 3, 4), "16% + 7.5% + 20%",                         435.0,           490.0),
    (D(2025, 4, 5), "16% + 7.5% + 20% + 10% reciprocal",        535.0,           590.0),
    (D(2025, 4, 9), "16% + 7.5% + 20% + 84%",                   1275.0,          1330.0),
    (D(2025, 4, 10), "16% + 7.5% + 20% + 125%",                 1685.0,          1740.0),
    (D(2025, 5, 13), "16% + 7.5% + 145% (the April peak)",      1685.0,          1740.0),
    (D(2025, 5, 14), "16% + 7.5% + 20% + 10% (Geneva truce)",   535.0,           590.0),
    (D(2025, 11, 9), "16% + 7.5% + 30%",                        535.0,           590.0),
    (D(2025, 11, 10), "16% + 7.5% + 10% + 10%",                 435.0,           490.0),
    (D(2026, 2, 23), "16% + 7.5% + 20%",                        435.0,           490.0),
    (D(2026, 2, 24), "16% + 7.5% + 10% Section 122",            335.0,           390.0),
]


@pytest.mark.parametrize("day, why, apparel, home", STACK, ids=[str(s[0]) for s in STACK])
def test_china_tariffs_stack_on_mfn_and_section_301_by_date(calc, day, why, apparel, home):
    assert duty(calc, day, "express", [1000.0]) == approx([apparel]), why
    assert duty(calc, day, "express", [1000.0], category="home") == approx([home]), why
    # toys: no MFN duty and no Section 301 (List 4B): only the IEEPA duties, e.g. 145% at the peak
    toys = {D(2025, 4, 10): 1450.0, D(2025, 5, 14): 300.0, D(2026, 2, 24): 100.0, D(2020, 2, 14): 0.0}
    if day in toys:
        assert duty(calc, day, "express", [1000.0], category="toys") == approx([toys[day]])


def test_the_general_regime_pays_the_same_stack(calc):
    # a bulk entry of apparel worth $10,000 on 10 Apr 2025: 168.5% -> 16,850
    assert duty(calc, D(2025, 4, 10), "general", [10_000.0]) == approx([16_850.0])


def test_china_de_minimis_withdrawn_4_to_6_february_and_from_2_may_2025(calc):
    # a $100 apparel parcel by express: free under the $800 de minimis, else the full stack
    # 4 Feb 2025: 16% + 7.5% + 10% = 33.50; 2 May 2025: 16% + 7.5% + 145% = 168.50
    for day, expected in ((D(2025, 2, 3), 0.0), (D(2025, 2, 4), 33.5), (D(2025, 2, 6), 33.5),
                          (D(2025, 2, 7), 0.0), (D(2025, 5, 1), 0.0), (D(2025, 5, 2), 168.5),
                          (D(2025, 5, 14), 53.5), (D(2025, 8, 29), 53.5)):
        assert duty(calc, day, "express", [100.0]) == approx([expected]), day


def test_china_postal_items_eo_14256_in_place_of_every_other_duty(calc, world):
    # 2 May 2025, China Post's method ad valorem: 120% of the value, nothing else:
    #   $50 -> 60.00, $800 -> 960.00; above $800 the full stack: $900 x 168.5% = 1,516.50
    day = D(2025, 5, 2)
    assert duty(calc, day, "postal", [50.0, 800.0, 900.0]) == approx([60.0, 960.0, 1516.5])
    # 14 May 2025: 54%: $50 -> 27.00; the per-item method would be $100 an item whatever the value
    assert duty(calc, D(2025, 5, 14), "postal", [50.0, 400.0]) == approx([27.0, 216.0])
    specific = _with_method(world.duty_rule("US", D(2025, 5, 14)), "CN", "specific")
    assert duty(calc, D(2025, 5, 14), "postal", [50.0, 400.0], rule=specific) == approx([100.0, 100.0])
    # a postal item of Japan keeps the $800 de minimis until 29 Aug 2025
    assert duty(calc, D(2025, 5, 14), "postal", [50.0], origin="JP") == [0.0]


def _with_method(rule, origin, method):
    postal = rule.postal.model_copy(update={"method": {**rule.postal.method, origin: method}})
    return rule.model_copy(update={"postal": postal})


def test_china_postal_items_eo_14324_banded_by_the_ieepa_rate_in_force(calc, world):
    # 29 Aug 2025, IEEPA 30%: ad valorem $40 -> 12.00; per item (> 25%) $200
    # 10 Nov 2025, IEEPA 20%: ad valorem $40 -> 8.00; per item (16-25%) $160
    for day, ad_valorem, per_item in ((D(2025, 8, 29), 12.0, 200.0), (D(2025, 11, 10), 8.0, 160.0)):
        assert duty(calc, day, "postal", [40.0], category="home") == approx([ad_valorem])
        specific = _with_method(world.duty_rule("US", day), "CN", "specific")
        assert duty(calc, day, "postal", [40.0], category="home", rule=specific) == approx([per_item])


def test_us_section_122_surcharge_from_24_february_2026(calc, world):
    # postal items pay the surcharge's 10% of the value: $1,000 -> 100.00; no per-item method is
    # offered any more, so an operator that declared one pays ad valorem too
    day = D(2026, 2, 24)
    assert duty(calc, day, "postal", [1000.0, 40.0]) == approx([100.0, 4.0])
    specific = _with_method(world.duty_rule("US", day), "CN", "specific")
    assert duty(calc, day, "postal", [1000.0, 40.0], rule=specific) == approx([100.0, 4.0])
    # and the day before, the EO 14324 rule (IEEPA 20%): per item $160, ad valorem 200.00
    assert duty(calc, D(2026, 2, 23), "postal", [1000.0]) == approx([200.0])


# ---- the operator's method as a scenario switch (a duty_rule shock's patch) ---------------
def test_a_shock_switches_one_operators_method_and_keeps_the_rest_of_the_rule():
    world = load_world()
    calc = DutyCalculator(world)
    patch = {"postal": {"method": {"CN": "specific"}}}
    validate_rule_patch(patch, "shock 'x'")
    world.rule_patches = {"US": [patch]}
    # EO 14324 (30% -> $200), after 10 Nov (20% -> $160), EO 14256 ($100), 2026 (no per-item: 10%)
    assert duty(calc, D(2025, 9, 1), "postal", [40.0]) == approx([200.0])
    assert duty(calc, D(2025, 11, 10), "postal", [40.0]) == approx([160.0])
    assert duty(calc, D(2025, 6, 1), "postal", [40.0]) == approx([100.0])
    assert duty(calc, D(2026, 3, 1), "postal", [40.0]) == approx([4.0])
    rule = world.duty_rule("US", D(2025, 9, 1))
    assert [b.amount for b in rule.postal.per_item] == [80.0, 160.0, 200.0]
    assert rule.extra_by_origin == {"CN": 0.30} and rule.postal.method == {"CN": "specific"}
    # express parcels are not touched: 53.5% x 40 = 21.40
    assert duty(calc, D(2025, 9, 1), "express", [40.0]) == approx([21.4])
    world.rule_patches = {}
    assert duty(calc, D(2025, 9, 1), "postal", [40.0]) == approx([12.0])


@pytest.mark.parametrize("patch, words", [
    ({"postal": {"method": {"CN": "per_item"}}}, "postal.method"),
    ({"postal": {"methd": {"CN": "specific"}}}, "postal.methd"),
    ({"postal": {"per_item": [{"amount": 80.0}, {"up_to": 0.25, "amount": 160.0}]}}, "last per-item band"),
    ({"postal": {"per_item": [{"below": 0.3, "amount": 80.0}, {"up_to": 0.25, "amount": 160.0}]}}, "increasing"),
    ({"postal": {"per_item": [{"below": 0.16, "up_to": 0.2, "amount": 80.0}]}}, "not both"),
    ({"extra_by_origin": {"CN": -0.1}}, "between 0 and 10"),
])
def test_bad_postal_patches_are_one_line_errors(patch, words):
    with pytest.raises(ScenarioError) as err:
        validate_rule_patch(patch, "shock 'x'")
    msg = str(err.value)
    assert "\n" not in msg and words in msg and "shock 'x'" in msg


def test_world_file_names_only_known_origins_and_categories(world):
    raw = world.spec.model_dump()
    raw["duty_rules"]["US"][-1]["postal"]["method"] = {"XX": "specific"}
    with pytest.raises(ValueError, match="unknown origin territories"):
        WorldSpec.model_validate(raw)
    raw = world.spec.model_dump()
    raw["duty_rules"]["US"][-1]["extra_by_origin_category"] = {"CN": {"shoes": 0.1}}
    with pytest.raises(ValueError, match="unknown categories"):
        WorldSpec.model_validate(raw)
