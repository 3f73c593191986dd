"""The bridge search of secondary suppression against its definition: an edge is a bridge when
removing it splits its component in two."""

from __future__ import annotations

import random

import pytest

from cyberclaims.regulator.disclosure import _bridges


def _components(edges: set[tuple]) -> int:
    parent: dict[tuple, tuple] = {}

    def find(node: tuple) -> tuple:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for r, c in edges:
        parent[find(("r", r))] = find(("c", c))
    return len({find(n) for n in list(parent)})


def _brute_force_bridges(edges: set[tuple]) -> set[tuple]:
    nodes = {("r", r) for r, _ in edges} | {("c", c) for _, c in edges}
    found = set()
    for edge in edges:
        rest = edges - {edge}
        # Nodes left without an edge are components of their own.
        isolated = len(nodes - {("r", r) for r, _ in rest} - {("c", c) for _, c in rest})
        if _components(rest) + isolated > _components(edges):
            found.add(edge)
    return found


@pytest.mark.parametrize("seed", range(200))
def test_bridges_match_brute_force_on_random_grids(seed):
    rng = random.Random(seed)
    rows, columns = rng.randint(1, 7), rng.randint(1, 7)
    density = rng.uniform(0.1, 0.8)
    # Row and column labels overlap on purpose (both sides have 0, 1, …, and a margin "__total__").
    labels_r = [*range(rows - 1), "__total__"]
    labels_c = [*range(columns - 1), "__total__"]
    edges = {(r, c) for r in labels_r for c in labels_c if rng.random() < density}
    expected = _brute_force_bridges(edges)
    assert _bridges(edges) == expected


def test_known_graphs():
    # A path: every edge is a bridge; a rectangle: none is; a rectangle with a tail: only the tail.
    path = {(0, 0), (1, 0), (1, 1)}
    rectangle = {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert _bridges(path) == path
    assert _bridges(rectangle) == set()
    assert _bridges(rectangle | {(2, 1)}) == {(2, 1)}
    assert _brute_force_bridges(rectangle | {(2, 1)}) == {(2, 1)}
