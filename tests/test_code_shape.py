"""Code shape: no function in gridgis/ or api/ longer than 120 lines of code.

Lines of code are the function's lines without blank lines, comment-only lines and
docstrings (nested functions count in their parent and on their own)."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CODE_LINES = 120
"""Issue 11: "no function over 120 code lines"."""


def _code_lines(source: str) -> set[int]:
    """Line numbers holding a token other than a comment, newline or indentation."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip or tok.type == tokenize.ENDMARKER:
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _docstring_lines(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                out.update(range(node.lineno, node.end_lineno + 1))
    return out


def long_functions(path: Path, limit: int = MAX_CODE_LINES) -> list[tuple[str, int]]:
    """``(qualified name, code lines)`` of every function in *path* over *limit*."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    code = _code_lines(source) - _docstring_lines(tree)
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                n = len(code & set(range(child.lineno, child.end_lineno + 1)))
                if n > limit:
                    found.append((name, n))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def test_the_counter_skips_docstrings_comments_and_blank_lines(tmp_path):
    body = "\n".join(f"    x{i} = {i}  # c" for i in range(121))
    src = f'def long():\n    """Doc\n\n    more doc."""\n    # a comment\n\n{body}\n'
    (tmp_path / "a.py").write_text(src + "\n\ndef short():\n    return 1\n")
    assert long_functions(tmp_path / "a.py") == [("long", 122)]
    assert long_functions(tmp_path / "a.py", limit=122) == []
    (tmp_path / "b.py").write_text(
        "class K:\n    def m(self):\n" + "\n".join(f"        y{i} = {i}" for i in range(130)) + "\n"
    )
    assert long_functions(tmp_path / "b.py") == [("K.m", 131)]


def test_no_function_over_120_code_lines():
    found = [
        f"{path.relative_to(ROOT)}: {name} has {n} code lines"
        for folder in ("gridgis", "api")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, n in long_functions(path)
    ]
    assert not found, "\n".join(found)
