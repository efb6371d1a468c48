from aiogram.fsm.state import State, StatesGroup


class Registration(StatesGroup):
    language = State()
    consent = State()
    phone = State()
    name = State()
    blood_type = State()
    sex = State()
    birth_date = State()
    weight = State()
    location = State()
    last_donation = State()
    club = State()
    summary = State()


class Pause(StatesGroup):
    days = State()


class DonatedElsewhere(StatesGroup):
    kind = State()
    date = State()


class Forget(StatesGroup):
    confirm = State()


class DonorEdit(StatesGroup):
    blood_type = State()
    weight = State()


class AddMember(StatesGroup):
    name = State()
    phone = State()
    join = State()  # the phone belongs to a donor already in RedReserve
    blood_type = State()
    sex = State()
    birth_date = State()
    weight = State()
    last_donation = State()
    confirm = State()


class MemberEdit(StatesGroup):
    value = State()


class ImportRoster(StatesGroup):
    club = State()
    confirm = State()


class AddPlace(StatesGroup):
    """An admin adding a club or a hospital."""

    name = State()
    location = State()
    area = State()
    phone = State()


class RequestFlow(StatesGroup):
    """Hospital staff's guided /request, one step per state (bot/routers/staff_request.py)."""

    blood_type = State()
    component = State()
    units = State()
    urgency = State()
    deadline = State()  # typing the time
    rh_positive = State()  # Rh− patients only
    note = State()
    confirm = State()


class DeskDeferral(StatesGroup):
    """Staff typing the end of an "other" deferral at screening (bot.routers.board)."""

    until = State()
