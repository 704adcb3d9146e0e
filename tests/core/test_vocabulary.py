"""The shared vocabulary in macha/core: severities, state-machine statuses and the systemd unit-name grammar."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from macha.core import states, units
from macha.core.severity import SEVERITIES, SEVERITY_RANK, Severity, worst
from macha.core.units import UnitNameError, normalise


def test_severities_are_ranked_worst_first_and_stay_plain_strings():
    assert [s.value for s in SEVERITIES] == ["critical", "high", "medium", "low", "info"]
    assert [s.rank for s in SEVERITIES] == [0, 1, 2, 3, 4]
    assert SEVERITY_RANK["medium"] == Severity.MEDIUM.rank == 2
    assert worst(["low", "critical", "high"]) is Severity.CRITICAL
    assert json.dumps({Severity.HIGH: [Severity.LOW]}) == '{"high": ["low"]}'
    assert f"{Severity.INFO}" == str(Severity.INFO) == "info"


def test_a_strenum_field_takes_the_same_strings_and_dumps_them():
    class M(BaseModel):
        severity: Severity
        status: states.ActionStatus

    m = M(severity="high", status="pending")
    assert m.severity is Severity.HIGH and m.status is states.ActionStatus.PENDING
    assert m.model_dump_json() == '{"severity":"high","status":"pending"}'


def test_core_imports_nothing_from_the_rest_of_macha():
    for path in Path(units.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith("macha") and not n.startswith("macha.core")], path


def test_settings_patterns_are_the_characters_they_always_were():
    # The spellings the settings validators had before the grammar moved to core.
    old_text = re.compile(r"[A-Za-z0-9:_.@\\-]{1,255}")
    old_glob = re.compile(r"[A-Za-z0-9:_.@\\*?\[\]-]{1,255}")
    for code in range(0x250):
        c = chr(code)
        assert bool(units.UNIT_TEXT.fullmatch(c)) == bool(old_text.fullmatch(c)), repr(c)
        assert bool(units.UNIT_GLOB.fullmatch(c)) == bool(old_glob.fullmatch(c)), repr(c)
    assert units.UNIT_TEXT.fullmatch("a" * 255) and not units.UNIT_TEXT.fullmatch("a" * 256)


@pytest.mark.parametrize("given,expected", [
    ("nginx", "nginx.service"), ("getty@tty1", "getty@tty1.service"), ("-.mount", "-.mount"),
    ("foo.timer", "foo.timer"), ("x\\x2dy.service", "x\\x2dy.service"),
])
def test_normalise_adds_service_as_systemctl_does(given, expected):
    assert normalise(given) == expected


@pytest.mark.parametrize("given,message", [
    (None, "unit must be a string, got NoneType"), ("", "unit name is empty"),
    ("-x.service", "starts with '-'"), ("a b", "is not a systemd unit name"),
    ("a" * 250 + ".service", "longer than 255"),
])
def test_normalise_refuses_with_the_catalogs_words(given, message):
    with pytest.raises(UnitNameError, match=re.escape(message)):
        normalise(given)


def test_suffix_group_knows_only_unit_types():
    assert re.fullmatch(units.suffix_group(("service", "timer")), "timer")
    with pytest.raises(ValueError):
        units.suffix_group(("service", "bogus"))
