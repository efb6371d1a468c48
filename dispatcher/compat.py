"""Who may be asked to give to whom, best first (DOMAIN.md §1).

The bot never decides compatibility: the hospital types and cross-matches every
unit (DOMAIN.md, preamble). These tables only decide whom to *ask*, and in what
order. A request yields a list of tiers; tier 0 is the identical type, later
tiers follow DOMAIN.md §1's order, and "last resort" tiers (the other RhD) come
after every tier of the recipient's own RhD.
"""

from __future__ import annotations

from dataclasses import dataclass

ABO = ("O", "A", "B", "AB")
RH = ("+", "-")
COMPONENTS = ("whole_blood", "red_cells", "platelets", "plasma")
BloodType = tuple[str, str]  # (abo, rh)

# Donor ABO groups per recipient, best first; each inner tuple is one tier (DOMAIN.md §1).
_RED_CELLS = {
    "O": (("O",),),
    "A": (("A",), ("O",)),
    "B": (("B",), ("O",)),
    "AB": (("AB",), ("A", "B"), ("O",)),
}
# Plasma is the reverse of red cells: AB gives to all, O only to O.
_PLASMA = {
    "O": (("O",), ("A", "B", "AB")),
    "A": (("A",), ("AB",)),
    "B": (("B",), ("AB",)),
    "AB": (("AB",),),
}
_PLATELETS = {
    "O": (("O",), ("A",), ("B",)),
    "A": (("A",), ("B", "O"), ("AB",)),
    "B": (("B",), ("A", "O"), ("AB",)),
    "AB": (("AB",), ("A", "B"), ("O",)),
}


class InvalidBloodType(ValueError):
    pass


def abo_tiers(recipient_abo: str, component: str) -> tuple[tuple[str, ...], ...]:
    if recipient_abo not in ABO:
        raise InvalidBloodType(f"unknown ABO group {recipient_abo!r}")
    if component == "whole_blood":
        # ABO-identical only: clubs cannot titre-test "low-titre O" (DOMAIN.md §1).
        return ((recipient_abo,),)
    if component == "red_cells":
        return _RED_CELLS[recipient_abo]
    if component == "plasma":
        return _PLASMA[recipient_abo]
    if component == "platelets":
        return _PLATELETS[recipient_abo]
    raise InvalidBloodType(f"unknown component {component!r}")


@dataclass(frozen=True)
class Tier:
    index: int
    types: tuple[BloodType, ...]
    last_resort: bool  # donors of the other RhD: asked only after every own-RhD tier

    @property
    def kind(self) -> str:
        """For reasons shown to people: "exact", "compatible", "rh_negative" or "rh_positive_allowed"."""
        if self.last_resort:
            return "rh_negative" if self.types[0][1] == "-" else "rh_positive_allowed"
        return "exact" if self.index == 0 else "compatible"


def compatible_tiers(
    recipient_abo: str, recipient_rh: str, component: str, rh_positive_ok: bool = False
) -> list[Tier]:
    """Tiers of donor types for a request, best first.

    RhD: an Rh− recipient is offered Rh− donors only, unless staff set the
    request's explicit "Rh-positive acceptable" flag (never inferred, DOMAIN.md §1);
    an Rh+ recipient gets Rh− donors last, because they are scarce (§1, §3). The
    rule is applied to every component, plasma included, although RhD does not
    matter for plasma: an Rh− request never reaches an Rh+ donor without the flag.
    """
    if recipient_rh not in RH:
        raise InvalidBloodType(f"unknown RhD {recipient_rh!r}")
    groups = abo_tiers(recipient_abo, component)
    if recipient_rh == "+":
        rh_order = [("+", False), ("-", True)]
    else:
        rh_order = [("-", False)] + ([("+", True)] if rh_positive_ok else [])
    tiers: list[Tier] = []
    for rh, last_resort in rh_order:
        for abos in groups:
            tiers.append(Tier(len(tiers), tuple((a, rh) for a in abos), last_resort))
    return tiers


def type_label(abo: str, rh: str) -> str:
    return f"{abo}{rh}"


def all_types() -> list[BloodType]:
    return [(a, r) for a in ABO for r in RH]
