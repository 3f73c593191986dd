"""Disclosure control: primary rules, and no suppressed cell can be solved for from what is published."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.optimize import linprog

from cyberclaims.regulator.disclosure import (
    CARRIED,
    PRIMARY_DOMINANCE,
    PRIMARY_FEW_INSUREDS,
    PRIMARY_FEW_INSURERS,
    SECONDARY,
    TOTAL,
    Contribution,
    DisclosureRules,
    one_way,
    primary_reasons,
    protect,
    protect_all,
    protect_linked,
    with_margins,
)

RULES = DisclosureRules()
INSURERS = [f"ins_{i}" for i in range(6)]


def cell(rng: random.Random, n_insurers: int, n_insureds: int, amounts=None) -> Contribution:
    insurers = rng.sample(INSURERS, n_insurers)
    amounts = amounts or [round(rng.uniform(1_000, 100_000), 2) for _ in insurers]
    return Contribution(dict(zip(insurers, amounts, strict=True)), {f"insd_{rng.random()}" for _ in range(n_insureds)})


def random_cells(rng: random.Random, rows, columns, thin_share=0.15):
    cells = {}
    for r in rows:
        for c in columns:
            if rng.random() < thin_share:
                cells[(r, c)] = cell(rng, rng.choice([1, 2]), rng.randint(1, 8))
            elif rng.random() < 0.05:
                continue  # an empty cell
            else:
                cells[(r, c)] = cell(rng, rng.randint(3, 6), rng.randint(5, 40))
    return cells


def attack(tables: list, shared: dict | None = None) -> dict:
    """Solve for every suppressed entry from everything published: each table's rows and columns sum
    to their totals, amounts are non-negative, and margins shared by several tables are one unknown.
    Returns {(table index, key): (lowest, highest)} the attacker can prove."""
    shared = shared or {}
    variables: dict = {}
    owner: dict = {}

    def var(t, key):
        name = shared.get((t, key), (t, key))
        if name not in variables:
            variables[name] = len(variables)
            owner[name] = (t, key)
        return variables[name]

    for t, table in enumerate(tables):
        for key in table.suppressed:
            var(t, key)
    rows_eq, rhs = [], []
    for t, table in enumerate(tables):
        # A one-way table has a single equation: its cells (r, TOTAL) add up to (TOTAL, TOTAL).
        lines = [[(r, c) for c in table.columns] + [(r, TOTAL)] for r in [*table.rows, TOTAL]] if table.columns else []
        lines += [[(r, c) for r in table.rows] + [(TOTAL, c)] for c in [*table.columns, TOTAL]]
        for line in lines:
            coefficients = np.zeros(len(variables) + 64)
            constant = 0.0
            for key in line:
                sign = -1.0 if key == line[-1] else 1.0
                if key in table.suppressed:
                    coefficients[var(t, key)] += sign
                else:
                    constant -= sign * table.value(key)
            rows_eq.append(coefficients)
            rhs.append(constant)
    n = len(variables)
    a_eq = np.array([row[:n] for row in rows_eq])
    b_eq = np.array(rhs)
    bounds = {}
    for name, index in variables.items():
        objective = np.zeros(n)
        objective[index] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * n, method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * n, method="highs")
        assert low.status == 0, "the published figures must be consistent"
        bounds[owner[name]] = (low.fun, -high.fun if high.status == 0 else float("inf"))
    return bounds


def assert_nothing_pinned(tables, shared=None):
    bounds = attack(tables, shared)
    for (t, key), (low, high) in bounds.items():
        value = tables[t].value(key)
        assert low - 1e-6 <= value <= high + 1e-6
        assert high - low > 1e-6 * max(1.0, value), f"table {t} entry {key} = {value} is pinned to [{low}, {high}]"


def test_primary_rules():
    enough = Contribution({"ins_0": 10.0, "ins_1": 20.0, "ins_2": 30.0}, set(range(5)))
    few = Contribution({"ins_0": 10.0, "ins_1": 20.0}, set(range(10)))
    dominated = Contribution({"ins_0": 900.0, "ins_1": 50.0, "ins_2": 50.0}, set(range(10)))
    small = Contribution({"ins_0": 1.0, "ins_1": 1.0, "ins_2": 1.0}, set(range(4)))
    assert primary_reasons(enough, RULES) == []
    assert primary_reasons(few, RULES) == [PRIMARY_FEW_INSURERS]
    assert primary_reasons(dominated, RULES) == [PRIMARY_DOMINANCE]
    assert primary_reasons(small, RULES) == [PRIMARY_FEW_INSUREDS]
    assert primary_reasons(dominated, DisclosureRules(dominance_share=0.95)) == []


def test_a_cell_dominated_by_one_insurer_is_suppressed_and_cannot_be_recovered():
    rng = random.Random(7)
    rows, columns = ["finance", "energy", "health", "retail"], ["liability", "property", "comprehensive"]
    cells = {(r, c): cell(rng, 4, 20) for r in rows for c in columns}
    cells[("energy", "property")] = cell(rng, 3, 12, amounts=[950_000.0, 30_000.0, 20_000.0])
    table = protect(with_margins(rows, columns, cells), RULES)
    assert table.suppressed[("energy", "property")] == [PRIMARY_DOMINANCE]
    assert sum(1 for v in table.suppressed.values() if v == [SECONDARY]) >= 3
    # Every row and column with a suppression has at least two.
    for r in [*rows, TOTAL]:
        n = sum(1 for (rr, _) in table.suppressed if rr == r)
        assert n in (0,) or n >= 2
    assert_nothing_pinned([table])


# Seeds whose random table has primary suppressions (seeds 1, 7 and 10 of 0–14 draw none: nothing to attack).
@pytest.mark.parametrize("seed", [0, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14])
def test_no_suppressed_cell_of_a_random_table_can_be_solved_for(seed):
    rng = random.Random(seed)
    rows = [f"r{i}" for i in range(rng.randint(2, 7))]
    columns = [f"c{j}" for j in range(rng.randint(2, 6))]
    table = protect(with_margins(rows, columns, random_cells(rng, rows, columns)), RULES)
    reasons = list(table.suppressed.values())
    assert any(r != [SECONDARY] for r in reasons) and any(r == [SECONDARY] for r in reasons)
    assert_nothing_pinned([table])
    # Totals stay true: every published margin is the sum of its cells.
    for r in [*rows, TOTAL]:
        assert table.value((r, TOTAL)) == pytest.approx(sum(table.value((r, c)) for c in columns))


def test_tables_sharing_margins_are_protected_together():
    """Sector × product and sector × incident type publish the same sector totals; an attacker who
    combines both tables still cannot solve for any suppressed figure."""
    rng = random.Random(3)
    sectors, products, types = ["fin", "ene", "hea", "ret", "man"], ["p1", "p2", "p3"], ["ransom", "breach", "ddos", "fraud"]
    # The same contributions, split two ways, so the sector totals agree.
    atoms = []
    for s in sectors:
        for _ in range(rng.randint(4, 12)):
            atoms.append((s, rng.choice(products), rng.choice(types), rng.choice(INSURERS), rng.uniform(100, 10_000),
                          f"insd_{rng.random()}"))
    atoms.append(("hea", "p2", "ddos", "ins_0", 500_000.0, "insd_big"))  # one insurer dominates a cell
    by_product: dict = {}
    by_type: dict = {}
    for s, p, t, insurer, amount, insured in atoms:
        for grid, key in ((by_product, (s, p)), (by_type, (s, t))):
            c = grid.setdefault(key, Contribution())
            c.add(Contribution({insurer: amount}, {insured}))
    tables = protect_linked(
        {"product": with_margins(sectors, products, by_product), "type": with_margins(sectors, types, by_type)},
        RULES, {"product": "rows", "type": "rows"})
    a, b = tables["product"], tables["type"]
    assert any(v != [SECONDARY] for v in a.suppressed.values()) and any(v == [SECONDARY] for v in a.suppressed.values())
    hidden_a = {r for (r, c) in a.suppressed if c == TOTAL}
    hidden_b = {r for (r, c) in b.suppressed if c == TOTAL}
    assert hidden_a == hidden_b, "a margin hidden in one table is hidden in the other"
    shared = {}
    for s in [*sectors, TOTAL]:
        shared[(0, (s, TOTAL))] = ("sector_total", s)
        shared[(1, (s, TOTAL))] = ("sector_total", s)
    assert_nothing_pinned([a, b], shared)


def test_a_one_way_table_hides_a_second_cell_beside_a_lone_primary():
    rng = random.Random(11)
    provinces = [f"p{i}" for i in range(8)]
    cells = {p: cell(rng, 4, 30) for p in provinces}
    cells["p3"] = cell(rng, 2, 3)  # too few insurers and insureds
    table = protect(one_way(provinces, cells), RULES)
    assert table.suppressed[("p3", TOTAL)] == [PRIMARY_FEW_INSURERS, PRIMARY_FEW_INSUREDS]
    assert len(table.suppressed) == 2 and (TOTAL, TOTAL) not in table.suppressed
    # The second is the smallest other cell: the least information lost.
    second = next(k for k in table.suppressed if k != ("p3", TOTAL))
    assert table.value(second) == min(table.value((p, TOTAL)) for p in provinces if p != "p3")
    assert_nothing_pinned([table])


def test_an_empty_or_zero_cell_is_not_chosen_to_protect_another():
    """Amounts are not negative: a cycle through a zero moves one way only, so complements avoid it."""
    rows, columns = ["a", "b", "c"], ["x", "y", "z"]
    rng = random.Random(5)
    cells = {(r, c): cell(rng, 4, 20, amounts=[100.0, 100.0, 100.0, 100.0]) for r in rows for c in columns}
    cells[("a", "x")] = cell(rng, 1, 2)
    del cells[("b", "y")]  # nobody contributes: a published zero
    table = with_margins(rows, columns, cells)
    table.fragile = {("b", "y")}
    protect(table, RULES)
    assert ("b", "y") not in table.suppressed
    assert_nothing_pinned([table])


def test_linked_entries_and_carried_suppressions():
    """A figure repeated in two tables is hidden in both; an entry an earlier pack hid stays hidden."""
    rng = random.Random(9)
    rows, columns = ["r0", "r1", "r2", "r3"], ["c0", "c1", "c2"]
    cells = {(r, c): cell(rng, 4, 20) for r in rows for c in columns}
    for c in columns:  # row r1 comes from one insurer: its total is a primary suppression
        cells[("r1", c)] = Contribution({"ins_0": 1000.0}, {f"insd_{c}"})
    a = with_margins(rows, columns, cells)
    b = one_way(rows, {r: a.cells[(r, TOTAL)] for r in rows})  # a's row totals, published again
    tables = protect_all({"a": a, "b": b}, RULES,
                         links=[[("a", (r, TOTAL)), ("b", (r, TOTAL))] for r in rows],
                         carried=[("a", ("r3", "c2"))])
    assert a.suppressed[("r3", "c2")] == [CARRIED]
    assert ("r1", TOTAL) in b.suppressed and ("r1", TOTAL) in a.suppressed
    hidden_rows_a = {r for (r, c) in a.suppressed if c == TOTAL}
    hidden_rows_b = {r for (r, c) in b.suppressed if r != TOTAL}
    assert hidden_rows_a == hidden_rows_b
    shared = {(t, (r, TOTAL)): ("row", r) for t in (0, 1) for r in rows}
    assert_nothing_pinned([tables["a"], tables["b"]], shared)
