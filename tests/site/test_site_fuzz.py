"""Robustness: whatever happens to a site file, loading either succeeds or raises SiteError with
well-formed problems; no other exception escapes and nothing is half-loaded."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.site import Site, SiteError, parse_site
from tests.site.tiny import TINY

LINES = TINY.splitlines()
REPLACEMENTS = ['"L9"', "0", "-1", "1e9", "3.5", '"x"', "[]", "[[0, 0]]", "true", "{}",
                "[[0, 0], [1e5, 0], [1e5, 1], [0, 1]]", '["L1"]', '["L1", "L1"]']


@st.composite
def mutated(draw) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "revalue"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif " = " in lines[i]:
            key = lines[i].split(" = ", 1)[0]
            lines[i] = f"{key} = {draw(st.sampled_from(REPLACEMENTS))}"
        if not lines:
            break
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(mutated())
def test_mutated_files_load_or_fail_with_problems(text):
    try:
        site = parse_site(text, file="fuzz.toml")
    except SiteError as exc:
        assert exc.problems
        n = len(text.splitlines())
        for p in exc.problems:
            assert p.file == "fuzz.toml" and p.key and p.why
            assert p.line is None or 1 <= p.line <= n
        assert len(str(exc).splitlines()) == len(exc.problems)
    else:
        assert isinstance(site, Site) and site.floors
        assert any(z.kind == "entrance" for z in site.zones)
