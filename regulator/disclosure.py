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

Tables that publish the same margin (e.g. sector totals in sector × product and sector ×
incident type) share its suppression: a margin suppressed in one is suppressed in all, and the
tables are protected again until nothing changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

TOTAL = "__total__"

PRIMARY_FEW_INSURERS = "FEW_INSURERS"
PRIMARY_FEW_INSUREDS = "FEW_INSUREDS"
PRIMARY_DOMINANCE = "DOMINANCE"
SECONDARY = "SECONDARY"


@dataclass(frozen=True)
class DisclosureRules:
    min_insurers: int = 3
    min_insureds: int = 5
    dominance_share: float = 0.85


@dataclass
class Contribution:
    """What one cell is made of: amount per insurer, and the insureds behind it."""

    by_insurer: dict[str, float] = field(default_factory=dict)
    insureds: set[Hashable] = field(default_factory=set)

    @property
    def amount(self) -> float:
        return sum(self.by_insurer.values())

    def add(self, other: Contribution) -> None:
        for insurer, amount in other.by_insurer.items():
            self.by_insurer[insurer] = self.by_insurer.get(insurer, 0.0) + amount
        self.insureds |= other.insureds


def primary_reasons(cell: Contribution, rules: DisclosureRules) -> list[str]:
    reasons = []
    insurers = [i for i, a in cell.by_insurer.items() if a != 0] or list(cell.by_insurer)
    if len(insurers) < rules.min_insurers:
        reasons.append(PRIMARY_FEW_INSURERS)
    if len(cell.insureds) < rules.min_insureds:
        reasons.append(PRIMARY_FEW_INSUREDS)
    total = cell.amount
    if total > 0 and max(cell.by_insurer.values()) > rules.dominance_share * total:
        reasons.append(PRIMARY_DOMINANCE)
    return reasons


@dataclass
class ProtectedTable:
    """A table with margins: cells[(row, column)], row totals at (row, TOTAL), column totals at
    (TOTAL, column), the grand total at (TOTAL, TOTAL); `suppressed` maps an entry to its reasons."""

    rows: list[Hashable]
    columns: list[Hashable]
    cells: dict[tuple[Hashable, Hashable], Contribution]
    suppressed: dict[tuple[Hashable, Hashable], list[str]] = field(default_factory=dict)

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
            grid[(r, c)] = Contribution(dict(cell.by_insurer), set(cell.insureds))
            for key in ((r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
                grid[key].add(cell)
    return ProtectedTable(rows, columns, grid)


def _is_bridge(edge: tuple, edges: set[tuple]) -> bool:
    """True when the edge (row, column) lies on no cycle of the bipartite graph of `edges`."""
    start, goal = ("r", edge[0]), ("c", edge[1])
    adjacency: dict[tuple, list[tuple]] = {}
    for r, c in edges:
        if (r, c) == edge:
            continue
        adjacency.setdefault(("r", r), []).append(("c", c))
        adjacency.setdefault(("c", c), []).append(("r", r))
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            return False
        for nxt in adjacency.get(node, []):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return True


def _cost(table: ProtectedTable, key: tuple) -> float:
    if key in table.suppressed:
        return 0.0
    # Margins are the figures a regulator reads first: suppress interior cells before them.
    penalty = 1e12 if TOTAL in key else 0.0
    return penalty + abs(table.value(key)) + 1.0


def secondary_suppression(table: ProtectedTable) -> None:
    """Add the least costly suppressions until no suppressed entry can be solved for (in place)."""
    all_rows, all_columns = [*table.rows, TOTAL], [*table.columns, TOTAL]
    while True:
        edges = set(table.suppressed)
        bridge = next((e for e in sorted(edges, key=str) if _is_bridge(e, edges)), None)
        if bridge is None:
            return
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


def protect(table: ProtectedTable, rules: DisclosureRules) -> ProtectedTable:
    for key, cell in table.cells.items():
        reasons = primary_reasons(cell, rules)
        # An empty cell (nobody contributes) reveals nothing about anyone: it stays a published zero.
        if reasons and (cell.by_insurer or cell.insureds):
            table.suppressed[key] = reasons
    secondary_suppression(table)
    return table


def protect_linked(tables: dict[str, ProtectedTable], rules: DisclosureRules,
                   shared_margins: dict[str, str]) -> dict[str, ProtectedTable]:
    """Protect tables that publish the same margins. `shared_margins` names, per table, which of its
    dimensions ('rows' or 'columns') is shared: the row (or column) totals of every table naming the
    same dimension value are the same published figure, so a suppression of one is a suppression
    of all."""
    for table in tables.values():
        protect(table, rules)
    while True:
        changed = False
        hidden: set[Hashable] = set()
        for name, table in tables.items():
            side = shared_margins.get(name)
            if side == "rows":
                hidden |= {r for (r, c) in table.suppressed if c == TOTAL and r != TOTAL}
            elif side == "columns":
                hidden |= {c for (r, c) in table.suppressed if r == TOTAL and c != TOTAL}
        for name, table in tables.items():
            side = shared_margins.get(name)
            keys = [(h, TOTAL) for h in hidden] if side == "rows" else [(TOTAL, h) for h in hidden] if side == "columns" else []
            added = [k for k in keys if k in table.cells and k not in table.suppressed]
            for key in added:
                table.suppressed[key] = [SECONDARY]
            if added:
                secondary_suppression(table)
                changed = True
        if not changed:
            return tables
