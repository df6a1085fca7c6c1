#!/usr/bin/env python3
"""Checks that the workspace's Rust code depends one way.

Crates: cargo already refuses a cycle between crates; this prints their graph
(from each Cargo.toml's `syncbridge-*` dependencies) with --print.

Modules: inside each syncbridge crate (`host/src` and `crates/*/src`), reads
every `crate::<module>` path (outside comments and `#[cfg(test)]` modules),
builds the graph of top-level modules and fails, naming the cycle, when one
module reaches itself.
"""
import collections
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")


def crates():
    """(name, src dir, syncbridge dependencies) of every syncbridge crate."""
    found = []
    for manifest in [os.path.join(ROOT, "host", "Cargo.toml")] + sorted(
        glob.glob(os.path.join(ROOT, "crates", "*", "Cargo.toml"))
    ):
        text = open(manifest, encoding="utf-8").read()
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M).group(1)
        deps_section = text.split("[dependencies]", 1)[-1].split("\n[", 1)[0]
        deps = sorted(set(re.findall(r"^(syncbridge-[a-z-]+)\s*=", deps_section, re.M)))
        found.append((name, os.path.join(os.path.dirname(manifest), "src"), deps))
    return found


def module_graph(src_root):
    edges = collections.defaultdict(set)
    for d, _, files in os.walk(src_root):
        for f in files:
            if not f.endswith(".rs") or f in ("main.rs", "lib.rs"):
                continue
            path = os.path.join(d, f)
            me = os.path.relpath(path, src_root)[:-3].split(os.sep)[0]
            src = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            src = "\n".join(l for l in src.splitlines() if not l.strip().startswith("//"))
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
    show = "--print" in sys.argv
    all_crates = crates()
    if show:
        print("crates:")
        for name, _, deps in all_crates:
            print(f"  {name} -> {', '.join(deps) or '(none)'}")
    failed = False
    modules = 0
    for name, src, _ in all_crates:
        edges = module_graph(src)
        modules += len(edges)
        if show and edges:
            print(f"modules of {name}:")
            for m in sorted(edges):
                print(f"  {m} -> {', '.join(sorted(edges[m]))}")
        found = cycle(edges)
        if found:
            failed = True
            print(f"modules of {name} depend on each other in a cycle: " + " -> ".join(found), file=sys.stderr)
    if failed:
        print("move the shared piece into a lower module or crate (see docs/architecture.md, 'Layers')", file=sys.stderr)
        sys.exit(1)
    print(f"{len(all_crates)} crates; {modules} modules with dependencies inside them; no cycle")


main()
