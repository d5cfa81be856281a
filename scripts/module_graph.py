#!/usr/bin/env python3
"""Draw hostmcp's module graph from its imports, and report what breaks the house's order.

    python3 scripts/module_graph.py          # rooms (top-level modules) and their arrows
    python3 scripts/module_graph.py files    # also every file's arrows
    python3 scripts/module_graph.py check    # exit 1 on a cycle or a forbidden arrow

An arrow is any path to another module in a file's code (not its comments or docs) outside
`#[cfg(test)]` modules: `crate::x`, `use crate::{x, ...}`, and `super::x` (resolved against the file's
own module path, which the first version of this script missed). Test files are skipped.
"""
import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Arrows that must not exist (from room, to room): lower floors never import upper ones.
FORBIDDEN = [
    ("tools", "transport"), ("transport", "tools"), ("transport", "config"),
    ("cli", "config"), ("config", "transport"), ("hardening", "tools"),
    ("caller", "tools"), ("caller", "transport"), ("handler_link", "tools"),
    ("handler_link", "transport"),
    # The client of remote servers shares nothing with the server side.
    ("client", "transport"), ("client", "tools"), ("transport", "client"), ("tools", "client"),
]


def module_path(rel):
    """`tools/mod.rs` -> ['tools'], `transport/sse.rs` -> ['transport', 'sse']."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def split_top(body):
    """Top-level items of a `{a, b::{c, d}, e}` group."""
    depth, cur, items = 0, "", []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def groups(src, prefix):
    """Each `prefix{...}` group (braces matched) and each plain `prefix name` path."""
    for m in re.finditer(r"\b" + prefix + r"(\{|[a-z_]+)", src):
        if m.group(1) != "{":
            yield [m.group(1) + src[m.end():m.end() + 80].split(";")[0].split(",")[0]]
            continue
        depth, i = 1, m.end()
        while depth and i < len(src):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        yield split_top(src[m.end():i - 1])


def targets(src, me, known):
    """The modules `src` (the file of module `me`) names: paths like ('tools', 'jobs')."""
    found = set()
    for prefix, base in (("crate::", []), ("super::", me[:-1])):
        for items in groups(src, prefix):
            for item in items:
                names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item.split("{")[0])
                path = base + [n for n in names if n != "self"][:2]
                while path and "/".join(path) not in known:
                    path = path[:-1]
                if path:
                    found.add(tuple(path))
    return found


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    rooms = collections.defaultdict(set)
    files = {}
    known = set()
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                known.add("/".join(module_path(os.path.relpath(os.path.join(dirpath, name), ROOT))))
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
            if "/tests" in "/" + rel or rel.endswith("tests.rs"):
                continue
            src = open(os.path.join(ROOT, rel)).read()
            cut = src.find("#[cfg(test)]\nmod tests {")
            if cut >= 0:
                src = src[:cut]
            # Comments (docs included) link, they do not import: a doc link is no arrow.
            src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith("//"))
            me = module_path(rel)
            if not me:
                continue
            found = targets(src, me, known)
            files["/".join(me)] = sorted("/".join(t) for t in found if list(t) != me[: len(t)])
            for t in found:
                if t[0] != me[0]:
                    rooms[me[0]].add(t[0])
    for room in sorted(rooms):
        print(room, "->", " ".join(sorted(rooms[room])))
    if mode == "files":
        for f in sorted(files):
            print("  ", f, "->", " ".join(files[f]))
    problems = []
    for a, b in FORBIDDEN:
        if b in rooms.get(a, ()):
            problems.append(f"forbidden arrow {a} -> {b}")
    # Cycles between files of one room (two files importing each other).
    for f, outs in files.items():
        for o in outs:
            if f in files.get(o, ()) and f < o:
                problems.append(f"cycle {f} <-> {o}")
    for a in rooms:
        for b in rooms[a]:
            if a in rooms.get(b, ()) and a < b:
                problems.append(f"cycle {a} <-> {b}")
    for p in problems:
        print("!!", p, file=sys.stderr if mode == "check" else sys.stdout)
    if mode == "check" and problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
