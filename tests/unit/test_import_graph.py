"""The plan of the house, kept by the import graph (grimp reads the source).

* ``saas`` never imports ``workers``: the worker entry point imports the app,
  never the other way (the task system lives inside ``saas``).
* Views are leaves: nothing imports a ``views`` module; a step two views need
  is a service with a name.
* No package-level loops: collapsing every module to its top-level part of
  ``saas`` (``saas.flows``, ``saas.tokens``, ``saas.config`` …) leaves a graph
  without cycles, so each package can be read, and changed, below the ones
  that use it. ``saas/__init__.py`` (the WSGI entry point) and
  ``saas.config`` (the composition root that includes every package) stand
  above everything and are left out.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import grimp
import pytest

COMPOSITION_ROOTS = {"saas", "saas.config"}


@pytest.fixture(scope="module")
def graph():
    # No cache: a stale one (grimp keeps it in .grimp_cache) would check yesterday's code.
    return grimp.build_graph("saas", "workers", "bench", include_external_packages=False,
                             cache_dir=None)


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_edges(graph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.find_descendants("saas"):
        source = _part(module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = _part(imported)
            if imported.startswith("saas.") and source != target \
                    and not {source, target} & COMPOSITION_ROOTS:
                edges[source].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that returns to its start, or None."""
    done: set[str] = set()
    for start in sorted(edges):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child):], child]
            elif child not in done:
                stack.append((child, iter(sorted(edges.get(child, ())))))
                path.append(child)
                on_path.add(child)
    return None


def test_saas_never_imports_workers(graph):
    offenders = sorted(
        f"{module} imports {imported}"
        for module in graph.find_descendants("saas") | {"saas"}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == "workers" or imported.startswith("workers."))
    assert offenders == []


def test_no_module_imports_a_views_module(graph):
    views = {module for module in graph.modules if module.rsplit(".", 1)[-1] == "views"}
    offenders = sorted(
        f"{importer} imports {module}"
        for module in views
        for importer in graph.find_modules_that_directly_import(module))
    assert offenders == []


def test_packages_import_each_other_without_loops(graph):
    edges = package_edges(graph)
    cycle = find_cycle(edges)
    detail = []
    if cycle:
        for source, target in itertools.pairwise(cycle):
            example = next(
                f"{module} -> {imported}"
                for module in sorted(graph.find_descendants(source) | {source} & graph.modules)
                for imported in sorted(graph.find_modules_directly_imported_by(module))
                if _part(imported) == target)
            detail.append(example)
    assert cycle is None, " | ".join(detail)


def test_the_cycle_finder_finds_a_loop_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
