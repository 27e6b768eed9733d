"""One small registry class, instantiated once per kind of thing (models, datasets)."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to builders. Duplicate names are refused; unknown names list the valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def decorator(builder: T) -> T:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            self._meta[name] = meta
            return builder

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for plugins and tests that register for a while); unknown names raise."""
        self.get(name)
        del self._builders[name], self._meta[name]

    def get(self, name: str) -> T:
        if name not in self._builders:
            valid = ", ".join(sorted(self._builders))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}")
        return self._builders[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self, **filters: Any) -> list[str]:
        """Sorted names whose metadata matches every filter (filters set to None are ignored)."""
        wanted = {k: v for k, v in filters.items() if v is not None}
        return sorted(n for n, m in self._meta.items() if all(m.get(k) == v for k, v in wanted.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._builders
