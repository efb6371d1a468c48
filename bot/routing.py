"""Routers declared once per module, built fresh for every Dispatcher.

An aiogram Router can be attached to one parent only, but tests, the demo and the
playground each build their own Dispatcher in one process. A module therefore
declares its handlers on a :class:`RouterTemplate` (same decorator syntax as a
Router) and the app factory calls :meth:`build` for each Dispatcher.
"""

from __future__ import annotations

from typing import Any, Callable

from aiogram import Router

_OBSERVERS = ("message", "callback_query", "my_chat_member", "edited_message", "errors")


class _Observer:
    def __init__(self, template: "RouterTemplate", name: str) -> None:
        self._template = template
        self._name = name

    def __call__(self, *filters: Any, **kwargs: Any) -> Callable:
        def register(handler: Callable) -> Callable:
            self._template._handlers.append((self._name, handler, filters, kwargs))
            return handler

        return register

    def filter(self, *filters: Any) -> None:
        self._template._filters.append((self._name, filters))


class RouterTemplate:
    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[tuple[str, Callable, tuple, dict]] = []
        self._filters: list[tuple[str, tuple]] = []
        for observer in _OBSERVERS:
            setattr(self, observer, _Observer(self, observer))

    def build(self) -> Router:
        router = Router(name=self.name)
        for observer, filters in self._filters:
            getattr(router, observer).filter(*filters)
        for observer, handler, filters, kwargs in self._handlers:
            getattr(router, observer).register(handler, *filters, **kwargs)
        return router
