"""docs/ODD.md stays true to the code: its generated tables match the schema and the world."""

from __future__ import annotations

from experiments import odd


def test_odd_generated_tables_are_up_to_date():
    text = odd.DOC.read_text()
    stale = odd.stale_blocks(text)
    assert not stale, (f"docs/ODD.md is out of date in: {', '.join(stale)}; "
                       "regenerate it with: python -m experiments.odd")


def test_odd_covers_every_parameter_and_every_odd_element():
    from market.scenario import builtin_scenarios, parameter_table
    text = odd.DOC.read_text()
    for row in parameter_table():
        assert f"`{row['key']}`" in text, row["key"]
    for name in builtin_scenarios():
        assert f"`{name}`" in text, name
    for heading in ("## 1. Purpose and patterns", "## 2. Entities, state variables and scales",
                    "## 3. Process overview and scheduling", "## 4. Design concepts", "## 5. Initialization",
                    "## 6. Input data", "## 7. Submodels"):
        assert heading in text
    assert set(odd.RENDERERS) == {m.group(2) for m in odd.BLOCK.finditer(text)}


def test_check_mode_detects_a_stale_table(tmp_path):
    doc = tmp_path / "ODD.md"
    doc.write_text(odd.DOC.read_text().replace("`demand.scale`", "`demand.scael`", 1))
    assert odd.main(["--check", "--doc", str(doc)]) == 1
    assert odd.main(["--doc", str(doc)]) == 0            # regenerates
    assert odd.main(["--check", "--doc", str(doc)]) == 0
    assert doc.read_text() == odd.DOC.read_text()
