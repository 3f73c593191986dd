"""Disclosure control for the regulator pack: primary and secondary cell suppression.

A published table is a grid of cells with its row totals, column totals and grand total. Each
cell (margins included) knows its amount, each contributing insurer's share of it, and how many
insureds it covers.

**Primary suppression**: a cell is suppressed when fewer than `min_insurers` insurers or fewer
than `min_insureds` insureds contribute, or when the largest insurer contributes more than
`dominance_share` of its amount.

**Secondary suppression**: the table with its margins is a linear system — every row of cells
sums to its row total, every column to its column total. Write the margins with a minus sign
into an augmented (rows + 1) × (columns + 1) grid and every row and column of that grid sums to
zero. Suppressed entries are the unknowns: edges of a bipartite graph between the grid's rows
and columns. An unknown is pinned down by the published figures exactly when its edge is a
bridge of that graph (no cycle of unknowns runs through it); on a cycle, one can add and
subtract the same amount around the cycle without changing anything published. So, while some
suppressed entry is a bridge, the cheapest rectangle of further suppressions closing a cycle
through it is added (interior cells before margins, smallest amounts first).

A one-way table (no columns) publishes its cells and their total: one equation, so a lone
suppressed entry is derivable and a second one (the smallest other cell) is added.

Complementary suppressions avoid *fragile* cells — cells where some additive figure is zero. An
attacker knows amounts are not negative, so a cycle through a zero can only be moved one way and
may pin a value down; and when the hidden parts of a published sum are all zero in some figure, each
is pinned at zero: a part with a positive figure is then hidden too (the zero-line rule).

Tables of one pack are linked: the same figure published in two places (sector totals in sector ×
product and sector × incident type, the grand total of every table, a quarter's sector totals in
the sector × quarter table) is one entry, and a suppression of one is a suppression of all. The
tables are protected again until nothing changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import networkx as nx

TOTAL = "__total__"

PRIMARY_FEW_INSURERS = "FEW_INSURERS"
PRIMARY_FEW_INSUREDS = "FEW_INSUREDS"
PRIMARY_DOMINANCE = "DOMINANCE"
SECONDARY = "SECONDARY"
# Hidden because an earlier pack hid the figure it would reveal by subtraction.
CARRIED = "CARRIED"


@dataclass(frozen=True)
class DisclosureRules:
    min_insurers: int = 3
    min_insureds: int = 5
    dominance_share: float = 0.85


@dataclass
class Contribution:
    """What one cell is made of: amount per insurer, and the insureds behind it — as a set, or only
    as a count (`insured_count`) when the cell's distinct insureds were counted where the data are."""

    by_insurer: dict[str, float] = field(default_factory=dict)
    insureds: set[Hashable] = field(default_factory=set)
    insured_count: int | None = None
    # Further amounts the dominance rule applies to (e.g. written premium beside earned), by name.
    amounts: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def amount(self) -> float:
        return sum(self.by_insurer.values())

    def copy(self) -> Contribution:
        return Contribution(dict(self.by_insurer), set(self.insureds), self.insured_count,
                            {name: dict(shares) for name, shares in self.amounts.items()})

    @property
    def n_insureds(self) -> int:
        return len(self.insureds) if self.insured_count is None else self.insured_count

    def add(self, other: Contribution) -> None:
        if self.insured_count is not None or other.insured_count is not None:
            raise ValueError("insureds known only as counts cannot be added up: count the margin where the data are")
        for insurer, amount in other.by_insurer.items():
            self.by_insurer[insurer] = self.by_insurer.get(insurer, 0.0) + amount
        self.insureds |= other.insureds
        for name, shares in other.amounts.items():
            mine = self.amounts.setdefault(name, {})
            for insurer, amount in shares.items():
                mine[insurer] = mine.get(insurer, 0.0) + amount


def primary_reasons(cell: Contribution, rules: DisclosureRules) -> list[str]:
    """Why a cell may not be published. Every insurer listed contributes, even with a zero amount
    (it reports incidents or claims there)."""
    reasons = []
    if len(cell.by_insurer) < rules.min_insurers:
        reasons.append(PRIMARY_FEW_INSURERS)
    if cell.n_insureds < rules.min_insureds:
        reasons.append(PRIMARY_FEW_INSUREDS)
    for shares in (cell.by_insurer, *cell.amounts.values()):
        total = sum(shares.values())
        if total > 0 and max(shares.values()) > rules.dominance_share * total:
            reasons.append(PRIMARY_DOMINANCE)
            break
    return reasons


@dataclass
class ProtectedTable:
    """A table with margins: cells[(row, column)], row totals at (row, TOTAL), column totals at
    (TOTAL, column), the grand total at (TOTAL, TOTAL); `suppressed` maps an entry to its reasons."""

    rows: list[Hashable]
    columns: list[Hashable]
    cells: dict[tuple[Hashable, Hashable], Contribution]
    suppressed: dict[tuple[Hashable, Hashable], list[str]] = field(default_factory=dict)
    # Entries to avoid as complementary suppressions: some additive figure is zero, or the figure was
    # already published (in an earlier pack) so hiding it now protects nothing.
    fragile: set[tuple[Hashable, Hashable]] = field(default_factory=set)
    published_before: set[tuple[Hashable, Hashable]] = field(default_factory=set)
    # Every additive figure published in each entry (measure → value), for the zero-line rule below.
    figures: dict[tuple[Hashable, Hashable], dict[str, float]] = field(default_factory=dict)

    def value(self, key: tuple[Hashable, Hashable]) -> float:
        return self.cells[key].amount


def with_margins(rows: Iterable[Hashable], columns: Iterable[Hashable],
                 cells: dict[tuple[Hashable, Hashable], Contribution]) -> ProtectedTable:
    """Complete a grid (missing cells are empty contributions) with its row, column and grand totals."""
    rows, columns = list(rows), list(columns)
    grid: dict[tuple[Hashable, Hashable], Contribution] = {}
    for r in [*rows, TOTAL]:
        for c in [*columns, TOTAL]:
            grid[(r, c)] = Contribution()
    for r in rows:
        for c in columns:
            cell = cells.get((r, c), Contribution())
            grid[(r, c)] = cell.copy()
            for key in ((r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
                grid[key].add(cell)
    return ProtectedTable(rows, columns, grid)


def one_way(rows: Iterable[Hashable], cells: dict[Hashable, Contribution]) -> ProtectedTable:
    """A one-way table: cells at (row, TOTAL), their total at (TOTAL, TOTAL)."""
    rows = list(rows)
    grid = {(TOTAL, TOTAL): Contribution()}
    for r in rows:
        cell = cells.get(r, Contribution())
        grid[(r, TOTAL)] = cell.copy()
        grid[(TOTAL, TOTAL)].add(cell)
    return ProtectedTable(rows, [], grid)


def _bridges(edges: set[tuple]) -> set[tuple]:
    """The edges (row, column) that lie on no cycle of the bipartite graph of `edges`."""
    graph = nx.Graph()
    graph.add_edges_from((("r", r), ("c", c)) for r, c in edges)
    found = set()
    for u, v in nx.bridges(graph):
        row, column = (u, v) if u[0] == "r" else (v, u)
        found.add((row[1], column[1]))
    return found


def _cost(table: ProtectedTable, key: tuple) -> float:
    if key in table.suppressed:
        return 0.0
    # Margins are the figures a regulator reads first: suppress interior cells before them; a
    # fragile cell protects nothing in the direction of its zero.
    penalty = ((1e15 if key in table.published_before else 0.0) + (1e12 if TOTAL in key and table.columns else 0.0)
               + (1e9 if key in table.fragile else 0.0))
    return penalty + abs(table.value(key)) + 1.0


def _one_way_suppression(table: ProtectedTable) -> None:
    if len(table.suppressed) != 1:
        return
    # Prefer a cell over the total (the total is always kept if anything else will do).
    candidates = [(r, TOTAL) for r in table.rows if (r, TOTAL) not in table.suppressed]
    if not candidates:
        candidates = [(TOTAL, TOTAL)]
    table.suppressed[min(candidates, key=lambda k: (_cost(table, k), str(k)))] = [SECONDARY]


def _lines(table: ProtectedTable) -> list[tuple[list[tuple], tuple]]:
    """Every published sum of the table: (its parts, its total)."""
    if not table.columns:
        return [([(r, TOTAL) for r in table.rows], (TOTAL, TOTAL))]
    all_rows, all_columns = [*table.rows, TOTAL], [*table.columns, TOTAL]
    lines = [([(r, c) for c in table.columns], (r, TOTAL)) for r in all_rows]
    return lines + [([(r, c) for r in table.rows], (TOTAL, c)) for c in all_columns]


def _zero_line(table: ProtectedTable) -> tuple | None:
    """A suppression that a zero would give away, and the entry that protects it.

    Figures are never negative. When the hidden parts of a sum whose total is published are all zero in
    some figure, that sum of the hidden parts is zero, so each of them is pinned at zero, whatever cycles
    join them. Hiding one more part with a positive figure (or, when the line has none, its total)
    leaves every hidden part of the line a range instead of a value."""
    grand = table.figures.get((TOTAL, TOTAL), {})
    for parts, total in _lines(table):
        hidden = [p for p in parts if p in table.suppressed]
        if not hidden or total in table.suppressed:
            continue
        for measure in sorted({m for p in hidden for m in table.figures.get(p, {})}):
            if not grand.get(measure, 0.0) > 0:
                continue  # the whole table has none of it: every entry is a public zero, nothing to protect
            if any(table.figures.get(p, {}).get(measure, 0.0) > 0 for p in hidden):
                continue
            positive = [p for p in parts if p not in table.suppressed and table.figures.get(p, {}).get(measure, 0.0) > 0]
            if positive:
                return min(positive, key=lambda k: (_cost(table, k), str(k)))
            return total
    return None


def secondary_suppression(table: ProtectedTable) -> None:
    """Add the least costly suppressions until no suppressed entry can be solved for (in place)."""
    if not table.columns:
        _one_way_suppression(table)
        while (extra := _zero_line(table)) is not None:
            table.suppressed[extra] = [SECONDARY]
        return
    all_rows, all_columns = [*table.rows, TOTAL], [*table.columns, TOTAL]
    while True:
        bridges = _bridges(set(table.suppressed))
        bridge = min(bridges, key=str) if bridges else None
        if bridge is None:
            extra = _zero_line(table)
            if extra is None:
                return
            table.suppressed[extra] = [SECONDARY]
            continue
        r, c = bridge
        best, best_cost = None, float("inf")
        for r2 in all_rows:
            if r2 == r:
                continue
            for c2 in all_columns:
                if c2 == c:
                    continue
                trio = ((r, c2), (r2, c), (r2, c2))
                cost = sum(_cost(table, k) for k in trio)
                if cost < best_cost:
                    best, best_cost = trio, cost
        if best is None:  # a 1×1 table with margins: everything is derivable, suppress it all
            for key in table.cells:
                table.suppressed.setdefault(key, [SECONDARY])
            return
        for key in best:
            table.suppressed.setdefault(key, [SECONDARY])


def primary_suppression(table: ProtectedTable, rules: DisclosureRules) -> None:
    for key, cell in table.cells.items():
        reasons = primary_reasons(cell, rules)
        # An empty cell (nobody contributes) reveals nothing about anyone: it stays a published zero.
        if reasons and (cell.by_insurer or cell.n_insureds):
            table.suppressed[key] = [*table.suppressed.get(key, []), *reasons]


def protect(table: ProtectedTable, rules: DisclosureRules) -> ProtectedTable:
    primary_suppression(table, rules)
    secondary_suppression(table)
    return table


Entry = tuple[str, tuple[Hashable, Hashable]]


def protect_all(tables: dict[str, ProtectedTable], rules: DisclosureRules,
                links: Iterable[Iterable[Entry]] = (), carried: Iterable[Entry] = ()) -> dict[str, ProtectedTable]:
    """Protect linked tables. Each link lists entries `(table name, key)` that publish the same
    figure (or must be hidden together): once one is suppressed, all are, and every table touched
    is protected again until nothing changes. `carried` entries are hidden whatever their figures."""
    links = [[(name, key) for name, key in link if name in tables and key in tables[name].cells] for link in links]
    for name, key in carried:
        if name in tables and key in tables[name].cells:
            tables[name].suppressed.setdefault(key, [CARRIED])
    for table in tables.values():
        protect(table, rules)
    while True:
        changed: set[str] = set()
        for link in links:
            if any(key in tables[name].suppressed for name, key in link):
                for name, key in link:
                    if key not in tables[name].suppressed:
                        tables[name].suppressed[key] = [SECONDARY]
                        changed.add(name)
        if not changed:
            return tables
        for name in changed:
            secondary_suppression(tables[name])


def protect_linked(tables: dict[str, ProtectedTable], rules: DisclosureRules,
                   shared_margins: dict[str, str]) -> dict[str, ProtectedTable]:
    """Protect tables that publish the same margins. `shared_margins` names, per table, which of its
    dimensions ('rows' or 'columns') is shared: the row (or column) totals of every table naming the
    same dimension value are the same published figure; grand totals are shared by all."""
    links: dict[Hashable, list[Entry]] = {}
    for name, table in tables.items():
        links.setdefault(TOTAL, []).append((name, (TOTAL, TOTAL)))
        side = shared_margins.get(name)
        if side == "rows":
            for r in table.rows:
                links.setdefault(("rows", r), []).append((name, (r, TOTAL)))
        elif side == "columns":
            for c in table.columns:
                links.setdefault(("columns", c), []).append((name, (TOTAL, c)))
    return protect_all(tables, rules, links.values())
