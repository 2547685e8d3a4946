"""Shell completion of the CLI (click's): preset names complete from the built-in presets, paths as files."""

from __future__ import annotations

import pytest

from pipeline.presets import builtin_presets_dir
from tests.helpers import cm


def _complete(*words: str) -> list[tuple[str, str]]:
    r = cm(env={"_CATALOGMARK_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(("catalogmark", *words)),
                "COMP_CWORD": str(len(words))})
    assert r.returncode == 0, r.stderr
    return [tuple(line.split(",", 1)) for line in r.stdout.splitlines() if line]  # type: ignore[misc]


@pytest.mark.parametrize("words", [("run", "--preset"), ("presets", "show")])
def test_preset_names_complete(words: tuple[str, ...]) -> None:
    builtin = sorted(p.stem for p in builtin_presets_dir().glob("*.toml"))
    assert "amazon" in builtin and "shopify" in builtin
    assert _complete(*words, "") == [("plain", n) for n in builtin]
    assert _complete(*words, "sho") == [("plain", n) for n in builtin if n.startswith("sho")]
    assert _complete(*words, "nosuch") == []


def test_a_preset_path_completes_as_a_file() -> None:
    assert _complete("run", "--preset", "./my-presets/") == [("file", "./my-presets/")]


def test_the_bash_script_is_printed() -> None:
    r = cm(env={"_CATALOGMARK_COMPLETE": "bash_source"})
    assert r.returncode == 0 and "_catalogmark_completion()" in r.stdout and "complete " in r.stdout
