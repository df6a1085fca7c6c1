#!/usr/bin/env python3
"""Checks that the host's top-level modules depend on each other one way.

Reads every `crate::<module>` and `super::<module>` path in `host/src`
(outside comments and `#[cfg(test)]` modules), builds the graph of
top-level modules and fails, naming the cycle, when one module reaches
itself. Prints the graph with --print.
"""
import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "host", "src")


def top_module(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return rel[0]


def graph():
    edges = collections.defaultdict(set)
    for d, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs") or f in ("main.rs", "lib.rs"):
                continue
            path = os.path.join(d, f)
            src = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            src = "\n".join(l for l in src.splitlines() if not l.strip().startswith("//"))
            me = top_module(path)
            for m in re.finditer(r"\bcrate::([a-z_]+)", src):
                if m.group(1) != me:
                    edges[me].add(m.group(1))
    return edges


def cycle(edges):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    edges = graph()
    if "--print" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m]))}")
    found = cycle(edges)
    if found:
        print("host modules depend on each other in a cycle: " + " -> ".join(found), file=sys.stderr)
        print("move the shared piece into a lower module (see docs/architecture.md, 'Layers')", file=sys.stderr)
        sys.exit(1)
    print(f"host modules: {len(edges)} with dependencies, no cycle")


main()
