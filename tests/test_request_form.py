import pytest
from hypothesis import given
from hypothesis import strategies as st

from ground.parsing import ParseError, format_blood_type
from ground.request_form import COMPONENT_WORDS, URGENCY_WORDS, QuickRequest, parse_quick_request


@pytest.mark.parametrize(
    "args, expected",
    [
        ("O- 2", QuickRequest("O", "-", 2)),
        ("AB- 1 platelets critical", QuickRequest("AB", "-", 1, "platelets", "critical")),
        ("AB Rh- 1 critical platelets", QuickRequest("AB", "-", 1, "platelets", "critical")),
        ("B dương 3 tiểu cầu cấp cứu", QuickRequest("B", "+", 3, "platelets", "critical")),
        ("O âm 2 khối hồng cầu", QuickRequest("O", "-", 2, "red_cells", "urgent")),
        ("A+ 4 whole planned", QuickRequest("A", "+", 4, "whole_blood", "planned")),
    ],
)
def test_the_quick_form_in_both_languages(args, expected):
    assert parse_quick_request(args, max_units=20) == expected


@pytest.mark.parametrize(
    "args, says",
    [
        ("", "/urgent O- 2"),
        ("O-", "/urgent O- 2"),
        ("C+ 2", "blood type"),
        ("O- 0", "1 to 20"),
        ("O- 500", "1 to 20"),
        ("O- 2 bananas", "bananas"),
        ("2 O-", "How many units"),
    ],
)
def test_bad_quick_forms_say_what_is_wrong(args, says):
    with pytest.raises(ParseError) as err:
        parse_quick_request(args, max_units=20)
    assert says in str(err.value)


@given(
    abo=st.sampled_from(["O", "A", "B", "AB"]),
    rh=st.sampled_from(["+", "-"]),
    units=st.integers(1, 20),
    component=st.sampled_from(sorted(COMPONENT_WORDS)),
    urgency=st.sampled_from(sorted(URGENCY_WORDS)),
    swap=st.booleans(),
)
def test_any_valid_form_parses_back(abo, rh, units, component, urgency, swap):
    c_word, u_word = COMPONENT_WORDS[component][0], URGENCY_WORDS[urgency][0]
    tail = f"{u_word} {c_word}" if swap else f"{c_word} {u_word}"
    parsed = parse_quick_request(f"{format_blood_type(abo, rh)} {units} {tail}", max_units=20)
    assert parsed == QuickRequest(abo, rh, units, component, urgency)


@given(st.text(max_size=40))
def test_garbage_only_ever_raises_parse_error(text):
    try:
        parse_quick_request(text, max_units=20)
    except ParseError:
        pass
