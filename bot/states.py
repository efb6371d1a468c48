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
    date = State()


class Forget(StatesGroup):
    confirm = State()


class DonorEdit(StatesGroup):
    blood_type = State()
    weight = State()
