#!/usr/bin/env python3
"""Structure figures of src/ (non-test code): long functions, long files, string-key reads of
JSON values, `Result<_, String>` functions and swallowed serialisation errors.

Usage: scripts/code-metrics.py [--list]   (run from the repository root)
Test code is left out: `#[cfg(test)]` modules and src/fuzzing.rs's harness are not counted.
"""
import os
import re
import sys

LIST = "--list" in sys.argv


def strip_tests(text):
    """The file without its `#[cfg(test)] mod ... { }` blocks, and comment-only lines blanked."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(r"\s*mod \w+ \{", lines[i + 1]):
            depth = 0
            j = i + 1
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                if depth == 0 and j > i + 1:
                    break
                j += 1
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return out


def code_of(line):
    s = line.strip()
    if s.startswith("//"):
        return ""
    return line


FN = re.compile(r"^\s*(pub(\([a-z]+\))? )?(async )?(const )?(unsafe )?fn \w+")


def code_only(lines):
    """Each line with string and char literals and comments blanked, so that braces count."""
    out = []
    state = None  # None, "str", ("raw", hashes), "block"
    for line in lines:
        res = []
        i = 0
        while i < len(line):
            c = line[i]
            if state == "str":
                if c == "\\":
                    i += 2
                    continue
                if c == '"':
                    state = None
                i += 1
                continue
            if isinstance(state, tuple):
                close = '"' + "#" * state[1]
                if line.startswith(close, i):
                    state = None
                    i += len(close)
                else:
                    i += 1
                continue
            if state == "block":
                if line.startswith("*/", i):
                    state = None
                    i += 2
                else:
                    i += 1
                continue
            if line.startswith("//", i):
                break
            if line.startswith("/*", i):
                state = "block"
                i += 2
                continue
            m = re.match(r'r(#*)"', line[i:])
            if m and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
                state = ("raw", len(m.group(1)))
                i += len(m.group(0))
                continue
            if c == '"':
                state = "str"
                i += 1
                continue
            m = re.match(r"'(\\.|[^\\'])'", line[i:])
            if m:
                i += len(m.group(0))
                continue
            res.append(c)
            i += 1
        out.append("".join(res))
    return out


def functions(lines):
    """(name, first line, length) of each fn, by brace matching from its signature."""
    out = []
    code = code_only(lines)
    for i, l in enumerate(lines):
        if not FN.match(code[i]):
            continue
        depth = 0
        opened = False
        for j in range(i, len(lines)):
            c = code[j]
            depth += c.count("{") - c.count("}")
            if "{" in c:
                opened = True
            if opened and depth <= 0:
                out.append((re.search(r"fn (\w+)", l).group(1), i + 1, j - i + 1))
                break
            if not opened and c.rstrip().endswith(";"):
                break
    return out


KEY_READ = re.compile(r'\["[A-Za-z_][A-Za-z0-9_.]*"\]|\.get\("[^"]*"\)\s*\.?\s*(and_then|map|\?|\.as_|filter|cloned|is_some|is_none|unwrap)|\.pointer\(|\.get_mut\("')
RESULT_STRING = re.compile(r"->\s*(std::result::)?Result<[^;{]*,\s*String>")
SWALLOWED = re.compile(r"(serde_json::|\b)(to_value|to_string|to_string_pretty|to_vec|to_vec_pretty|from_value)\((?!\))[^;]*?\)\s*\.(unwrap_or_default\(\)|unwrap_or\((serde_json::)?Value::Null\)|unwrap_or_else\(\|_\| \"null\"|ok\(\))")


def main():
    long_fns, long_files, reads, res_string, swallowed = [], [], [], [], []
    for root, _, files in os.walk("src"):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            if path == "src/fuzzing.rs":
                continue
            lines = strip_tests(open(path).read())
            if len(lines) > 800:
                long_files.append((path, len(lines)))
            for name, at, n in functions(lines):
                if n > 80:
                    long_fns.append((f"{path}:{at} {name}", n))
            for i, l in enumerate(lines):
                c = code_of(l)
                for m in KEY_READ.finditer(c):
                    reads.append(f"{path}:{i + 1}")
                if RESULT_STRING.search(c):
                    res_string.append(f"{path}:{i + 1}")
                if SWALLOWED.search(c):
                    swallowed.append(f"{path}:{i + 1}")
    print(f"functions over 80 lines: {len(long_fns)}")
    if LIST:
        for n, l in sorted(long_fns, key=lambda x: -x[1]):
            print(f"  {l:4} {n}")
    print(f"files over 800 lines: {len(long_files)}")
    for p, n in long_files:
        print(f"  {n:5} {p}")
    print(f"string-key reads of JSON values: {len(reads)}")
    if LIST:
        by_file = {}
        for r in reads:
            by_file[r.split(':')[0]] = by_file.get(r.split(':')[0], 0) + 1
        for p, n in sorted(by_file.items(), key=lambda x: -x[1]):
            print(f"  {n:4} {p}")
    print(f"functions returning Result<_, String>: {len(res_string)}")
    if LIST:
        for r in res_string:
            print(f"  {r}")
    print(f"swallowed serialisation errors: {len(swallowed)}")
    if LIST:
        for r in swallowed:
            print(f"  {r}")


main()
