#!/usr/bin/env python3
"""Structure checks of src/ that no compiler lint gives (issue 14's proof):

  1. functions longer than 80 lines (tests and the tables listed in TABLES excepted);
  2. import circles between files: file A names something in file B (a `use` line or a
     `crate::…`/`super::…` path in code) and B, directly or through others, names A.
     `mod x;` declarations, a module naming its own submodules and `pub use` re-exports
     are not dependencies;
  3. `#[allow(dead_code)]` anywhere in src/.

usage: python3 scripts/code-structure.py [--strict] [src-dir]
Prints a report; with --strict, exits 1 when any of the three finds something.
"""

import os
import re
import sys

MAX_LINES = 80
# Functions that are a table, clearer whole (a route list, a match over every variable).
TABLES = {
    ("config/mod.rs", "from_lookup"),
}

FN = re.compile(r"^(\s*)(pub(\([^)]*\))? )?(async )?(const )?(unsafe )?fn (\w+)")
USE = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);", re.M | re.S)
PATH = re.compile(r"\b((?:crate|super|self)(?:::\w+)+)")
# A path that starts at a child module (`transcribe::run` inside pipeline/mod.rs).
RELATIVE = re.compile(r"(?<![:\w])(\w+(?:::\w+)+)")


def rust_files(src):
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.relpath(os.path.join(root, name), src)


def strip_tests(text):
    """The file without its `#[cfg(test)] mod tests { … }` tail (by convention the last item)."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(pub(\([^)]*\))?\s+)?mod tests\b", text, re.M)
    return text[: m.start()] if m else text


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(rel):
    """`web/pages/mod.rs` -> ("web", "pages"); `lib.rs`/`main.rs` -> ()."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return tuple(parts)


def long_functions(src, rel, text):
    lines = strip_tests(text).split("\n")
    found = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j] == indent + "}":
                length = j - i + 1
                name = m.group(7)
                if length > MAX_LINES and (rel, name) not in TABLES:
                    found.append((length, rel, i + 1, name))
                break
    return found


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"as\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        items.append(cur)
    out = []
    for item in items:
        for sub in expand_use(item):
            out.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    return out


def resolve(path, here, modules):
    """The file (module tuple) a `crate::`/`super::`/`self::` path lands in, or None."""
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    else:
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
        rest = parts
    best = None
    for n in range(len(rest) + 1):
        candidate = base + tuple(rest[:n])
        if candidate in modules:
            best = candidate
    return best


def dependencies(src, files):
    modules = {module_of(rel): rel for rel in files}
    edges = {rel: set() for rel in files}
    for rel in files:
        here = module_of(rel)
        # a file that is not mod.rs/lib.rs sits in its parent's namespace for `super::`
        text = strip_comments(strip_tests(open(os.path.join(src, rel)).read()))
        paths = []
        for m in USE.finditer(text):
            if m.group(1):  # `pub use` re-exports
                continue
            paths.extend(expand_use(m.group(3)))
        body = USE.sub("", text)
        paths.extend(PATH.findall(body))
        paths.extend(p for p in RELATIVE.findall(body) if not p.startswith(("crate", "super", "self")))
        for path in paths:
            if not path.startswith(("crate", "super", "self")):
                # relative to this module: only when it names a child module of it
                if here + (path.split("::")[0],) not in modules:
                    continue
                path = "self::" + path
            target = resolve(path, here, modules)
            # A module naming its own submodules is its structure, as `mod x;` is: only the
            # other direction (a child naming its parent or an ancestor's siblings) and edges
            # between unrelated files can close a circle.
            if target is None or target[: len(here)] == here:
                continue
            edges[rel].add(modules[target])
    return edges


def circles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--strict"]
    strict = "--strict" in sys.argv[1:]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    files = list(rust_files(src))
    problems = 0

    long = []
    allows = []
    for rel in files:
        text = open(os.path.join(src, rel)).read()
        long.extend(long_functions(src, rel, text))
        for n, line in enumerate(text.split("\n"), 1):
            if re.search(r"#!?\[allow\([^)]*dead_code", line):
                allows.append(f"{rel}:{n}")
    print(f"functions over {MAX_LINES} lines: {len(long)}")
    for length, rel, line, name in sorted(long, reverse=True):
        print(f"  {length:4} {rel}:{line} {name}")
    print(f"#[allow(dead_code)]: {len(allows)}")
    for place in allows:
        print(f"  {place}")
    found = circles(dependencies(src, files))
    print(f"import circles: {len(found)}")
    for comp in found:
        print("  " + " <-> ".join(comp))
    problems = len(long) + len(allows) + len(found)
    print(f"{len(files)} files read")
    if strict and problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
