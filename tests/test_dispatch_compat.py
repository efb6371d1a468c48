"""Compatibility tiers, exhaustively over 8 recipient types × 8 donor types × 4 components (DOMAIN.md §1)."""

import itertools

import pytest

from dispatcher.compat import ABO, COMPONENTS, RH, InvalidBloodType, compatible_tiers

# An independent reading of DOMAIN.md §1: which donor ABO groups may give each component.
ABO_OK = {
    "red_cells": {"O": {"O"}, "A": {"A", "O"}, "B": {"B", "O"}, "AB": {"AB", "A", "B", "O"}},
    "whole_blood": {g: {g} for g in ABO},
    "plasma": {"O": {"O", "A", "B", "AB"}, "A": {"A", "AB"}, "B": {"B", "AB"}, "AB": {"AB"}},
    "platelets": {"O": {"O", "A", "B"}, "A": {"A", "B", "O", "AB"}, "B": {"B", "A", "O", "AB"},
                  "AB": {"AB", "A", "B", "O"}},
}
TYPES = list(itertools.product(ABO, RH))


def may_ask(recipient, donor, component, flag):
    (ra, rr), (da, dr) = recipient, donor
    if da not in ABO_OK[component][ra]:
        return False
    return rr == "+" or dr == "-" or flag


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("flag", [False, True])
def test_every_recipient_donor_pair_matches_the_domain_table(component, flag):
    for recipient in TYPES:
        tiers = compatible_tiers(*recipient, component, rh_positive_ok=flag)
        offered = [t for tier in tiers for t in tier.types]
        assert len(offered) == len(set(offered)), "a type appears in two tiers"
        for donor in TYPES:
            assert (donor in offered) == may_ask(recipient, donor, component, flag), (recipient, donor, component)


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_identical_type_is_always_the_first_tier_alone(component):
    for recipient in TYPES:
        first = compatible_tiers(*recipient, component)[0]
        assert first.types == (recipient,) and first.kind == "exact"


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_other_rhd_comes_after_every_tier_of_the_patients_own(component):
    for recipient in TYPES:
        tiers = compatible_tiers(*recipient, component, rh_positive_ok=True)
        kinds = [t.types[0][1] == recipient[1] for t in tiers]
        assert kinds == sorted(kinds, reverse=True)
        for t in tiers:
            assert all(rh == t.types[0][1] for _, rh in t.types)
            assert t.last_resort == (t.types[0][1] != recipient[1])


def test_rh_negative_request_never_reaches_rh_positive_donors_without_the_flag():
    for component, abo in itertools.product(COMPONENTS, ABO):
        for tier in compatible_tiers(abo, "-", component):
            assert all(rh == "-" for _, rh in tier.types)


def test_the_orders_given_in_domain_md():
    def names(abo, rh, comp):
        return [sorted(a + r for a, r in t.types) for t in compatible_tiers(abo, rh, comp)]

    assert names("AB", "+", "red_cells") == [["AB+"], ["A+", "B+"], ["O+"], ["AB-"], ["A-", "B-"], ["O-"]]
    assert names("A", "-", "red_cells") == [["A-"], ["O-"]]
    assert names("A", "+", "whole_blood") == [["A+"], ["A-"]]
    assert names("O", "+", "whole_blood") == [["O+"], ["O-"]]
    assert names("O", "+", "plasma")[:2] == [["O+"], ["A+", "AB+", "B+"]]
    assert names("A", "+", "platelets")[:3] == [["A+"], ["B+", "O+"], ["AB+"]]
    assert names("O", "+", "platelets")[:3] == [["O+"], ["A+"], ["B+"]]


def test_o_whole_blood_is_never_offered_to_another_group():
    for abo in ("A", "B", "AB"):
        for t in compatible_tiers(abo, "+", "whole_blood", rh_positive_ok=True):
            assert all(a == abo for a, _ in t.types)


@pytest.mark.parametrize("bad", [("C", "+", "red_cells"), ("O", "?", "red_cells"), ("O", "+", "serum")])
def test_impossible_types_are_refused(bad):
    with pytest.raises(InvalidBloodType):
        compatible_tiers(*bad)
