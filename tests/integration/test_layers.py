"""The code's layers link one way: no cycle between healthd's objects (who uses whose symbols, read with nm)."""

import glob
import os
import subprocess

from harness.healthd import healthd_bin


def link_graph(objdir):
    defs, uses = {}, {}
    for obj in sorted(glob.glob(os.path.join(objdir, "*.o"))):
        name = os.path.basename(obj)[:-2]
        uses[name] = set()
        out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            if parts[1] == "U":
                uses[name].add(parts[0])
            elif parts[1] in "TDBR":
                defs[parts[0]] = name
    return {m: {defs[s] for s in uses[m] if s in defs and defs[s] != m} for m in uses}


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_objects_link_without_a_cycle():
    objdir = os.path.join(os.path.dirname(os.path.realpath(healthd_bin())), "obj")
    graph = link_graph(objdir)
    assert len(graph) >= 30, "no objects in %s" % objdir
    for m in sorted(graph):
        print("%-14s -> %s" % (m, " ".join(sorted(graph[m]))))
    assert cycles(graph) == []
    # the check types reach the engine only through the ops table: none links engine.o
    assert not [m for m in graph if m.startswith("check_") and "engine" in graph[m]]
    assert "alerts" not in graph["config"]


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
