"""The ground every layer stands on: the clock, texts and i18n, settings, parsing of what
people type and send (numbers, phones, dates, blood types, roster files) and the
donation-eligibility rules. It imports nothing from the project's other packages
(tests/test_layers.py holds that)."""
