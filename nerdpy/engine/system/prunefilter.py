"""docker's prune filters, one parser for `container/image/volume/network/system prune`:
`label=KEY[=VALUE]` (every one must match), `label!=KEY[=VALUE]` (none may match),
`until=TIME` (created before: a timestamp, a date or a duration ago), and per kind `dangling`
(images) and `all` (volumes). Any other key is an error (docker's "invalid filter"): a filter
is never ignored."""
from __future__ import annotations

from dataclasses import dataclass, field

from nerdpy.engine.errors import InvalidArgument

KEYS = {
    "container": ("label", "label!", "until"),
    "image": ("label", "label!", "until", "dangling"),
    "volume": ("label", "label!", "all"),
    "network": ("label", "label!", "until"),
    "system": ("label", "label!", "until"),
}


@dataclass
class PruneFilter:
    labels: list[str] = field(default_factory=list)       # KEY or KEY=VALUE, all must match
    not_labels: list[str] = field(default_factory=list)   # none may match
    until: float | None = None                            # created strictly before (epoch seconds)
    dangling: bool | None = None                          # images: False prunes every unused image
    all: bool = False                                     # volumes: named ones too

    def empty(self) -> bool:
        return not (self.labels or self.not_labels or self.until is not None)

    def match(self, labels: dict | None, created: float | None) -> bool:
        """Whether an object with these labels, created then, may be pruned."""
        labels = labels or {}
        if not all(_label_match(labels, f) for f in self.labels):
            return False
        if any(_label_match(labels, f) for f in self.not_labels):
            return False
        if self.until is not None and (created is None or created >= self.until):
            return False
        return True


def _label_match(labels: dict, want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={value}'")


def parse_prune_filters(items, kind: str) -> PruneFilter:
    """`--filter` values of `kind` prune -> a PruneFilter; InvalidArgument for anything docker refuses."""
    from nerdpy.engine.system.events import parse_time_arg

    allowed = KEYS[kind]
    f = PruneFilter()
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "label":
            f.labels.append(value)
        elif key == "label!":
            f.not_labels.append(value)
        elif key == "until":
            if f.until is not None:
                raise InvalidArgument("more than one until filter specified")
            try:
                f.until = parse_time_arg(value)
            except InvalidArgument:
                raise InvalidArgument(f"invalid filter 'until={value}'") from None
        elif key == "dangling":
            f.dangling = _bool(key, value)
        elif key == "all":
            f.all = _bool(key, value)
    return f
