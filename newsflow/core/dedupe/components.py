"""Connected components of the match graph: every node of a cluster points at its smallest node, the keeper.

The Beam transform computes them with alternating large-star / small-star steps (Kiveris et al. 2014) over
(node, neighbour) edges grouped by node; :func:`large_star` and :func:`small_star` are those steps on one
node's neighbourhood. :func:`components` is the in-memory reference (union-find) the transform must agree with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["components", "large_star", "parent_of", "small_star"]


def large_star(u: str, nbrs: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Connect every larger neighbour of ``u`` to the smallest node of u's neighbourhood (both directions)."""
    ns = set(nbrs)
    m = min(ns | {u})
    for v in ns:
        if v > u and v != m:
            yield v, m
            yield m, v


def small_star(u: str, nbrs: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Connect ``u`` and its smaller neighbours to the smallest of them (both directions)."""
    small = {v for v in nbrs if v < u} | {u}
    m = min(small)
    for v in small:
        if v != m:
            yield v, m
            yield m, v


def parent_of(u: str, nbrs: Iterable[str]) -> tuple[str | None, bool]:
    """(smallest neighbour when smaller than ``u``, else None; whether u's neighbourhood is not yet a star).

    Converged components are stars around their smallest node: a node with a smaller neighbour has no other.
    """
    ns = set(nbrs)
    m = min(ns | {u})
    if m < u:
        return m, len(ns) > 1
    return None, False


def components(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """node -> smallest node of its connected component, for every node of ``edges`` that is not that node."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: r for x in list(parent) if (r := find(x)) != x}
