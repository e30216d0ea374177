"""Tests that hold on any CPU: no test source hard-codes a hex digest.

numpy picks its exp/log/sum kernels by CPU (AVX2, AVX-512), so computed floats may differ in the last
bits between machines, and a sha256 of them typed in from one machine fails on another. A test that
guards "this path is unchanged" computes both paths in the same run; otherwise it compares a stored
fixture with a tolerance that says why it is that size (tests/test_signal.py's planted_ic=0 check).

A digest of a file the code copies, or of integer or text output, is the same on every CPU and may
stay: its line must carry the marker `# digest-ok: <why>`, the why naming a file, text or integers.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEX_RUN = re.compile(r"(?<![0-9A-Za-z])(?:0x)?[0-9a-fA-F]{12,}(?![0-9A-Za-z])")
MARKER = re.compile(r"#\s*digest-ok:\s*(?P<why>.*)$")
WHY_WORDS = ("file", "text", "integer")
LITERALS = {tokenize.STRING, tokenize.NUMBER} | {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def looks_like_digest(run: str) -> bool:
    """12+ hex characters with a letter and a digit: a digest or a prefix of one, not a decimal
    number or a word."""
    body = run[2:] if run.lower().startswith("0x") else run
    return any(c.isdigit() for c in body) and any(c in "abcdefABCDEF" for c in body)


def allowed(lines: list[str], first: int, last: int) -> bool:
    """A digest-ok marker with a reason on one of the literal's lines (1-based, inclusive)."""
    for line in lines[first - 1 : last]:
        m = MARKER.search(line)
        if m and any(w in m.group("why").lower() for w in WHY_WORDS):
            return True
    return False


def hard_coded_digests(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every string or number literal in `source` holding a hex digest whose line
    has no digest-ok marker."""
    lines = source.splitlines()
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in LITERALS:
            continue
        runs = [r for r in HEX_RUN.findall(tok.string) if looks_like_digest(r)]
        if runs and not allowed(lines, tok.start[0], tok.end[0]):
            found.append((tok.start[0], runs[0]))
    return found


def scan(folder: Path) -> list[str]:
    return [
        f"{path.relative_to(folder).as_posix()}:{line}: {literal}"
        for path in sorted(folder.rglob("*.py"))
        for line, literal in hard_coded_digests(path.read_text())
    ]


def test_no_test_hard_codes_a_hex_digest():
    found = scan(ROOT / "tests")
    assert not found, (
        "hex digests typed into tests; a digest of computed floats differs between CPUs. Compare both "
        "paths in one run, or a stored fixture with a tolerance; a digest of a copied file or of text "
        "or integer output needs '# digest-ok: <why>' on its line:\n" + "\n".join(found)
    )


# the digests tests/test_signal.py once typed in, in runs of 8 so this file holds no digest literal
SHA = "59d23d60 e9123a9b c793c235 89ffcc6d".replace(" ", "")


@pytest.mark.parametrize(
    "source,flagged",
    [
        (f'assert digest(x) == "{SHA[:16]}"\n', True),
        (f"assert h.hexdigest()[:12] == '{SHA[4:16]}'  # was fine on my machine\n", True),
        (f'WANT = {{"close": b"{SHA}"}}\n', True),
        (f'DOC = """\nexpected\n{SHA}\n"""\n', True),
        (f"assert seed == 0x{SHA[:14]}\n", True),
        (f'assert digest(x) == "{SHA[:16]}"  # digest-ok:\n', True),  # a marker without a reason
        (f'assert digest(x) == "{SHA[:16]}"  # digest-ok: sha256 of the copied weights file\n', False),
        (f'assert digest(x) == "{SHA[:16]}"  # digest-ok: text output, the same on every CPU\n', False),
        (f'assert digest(x) == "{SHA[:11]}"\n', False),  # 11 characters: too short to be a digest
        ('assert stamp == "202101040930"\n', False),  # digits only: a number, not a digest
        ('assert name == "deadbeefcafe_"\n', False),  # no digit
        (f"# a comment may quote {SHA}\nx = 1\n", False),
        ('meta["weights_sha256"] = "0" * 64\n', False),  # an expression, not a typed-in digest
    ],
)
def test_the_scan_sees_a_planted_digest(source, flagged):
    assert bool(hard_coded_digests(source)) is flagged


def test_the_scan_walks_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "test_ok.py").write_text("def test_a():\n    assert 1 + 1 == 2\n")
    (tmp_path / "sub" / "test_bad.py").write_text(f'def test_b():\n    assert h() == "{SHA[:16]}"\n')
    assert scan(tmp_path) == [f"sub/test_bad.py:2: {SHA[:16]}"]
