"""Named registries with did-you-mean errors.

Every pluggable stage (detector architectures, face detectors, aggregation
policies) registers its implementations here, so adding one is one file plus
one decorator, and a typo gets a helpful message instead of a KeyError.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import FakescopeError

T = TypeVar("T")


class UnknownNameError(FakescopeError, KeyError):
    code = "unknown_name"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class Registry(Generic[T]):
    """`populate`, if given, is called once before the first lookup: it imports the modules whose
    decorators register the implementations, so importing the registry itself stays cheap."""

    def __init__(self, kind: str, populate: Callable[[], object] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._populate = populate

    def _ensure(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate()

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        self._ensure()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        self._ensure()
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._items))}."

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        self._ensure()
        return sorted(self._items.items())
