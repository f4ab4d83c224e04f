"""Fraud links (FEATURES.md C3, 团伙): applications that share a phone, a device, an address or a
bank card within a time window form a group. Pure Python, no Django, no I/O.

The rule (see docs/CREDIT.md "Fraud links"):

- Two applications are **linked** when they share a normalised value of one kind (phone, device,
  address, bank card) and their timestamps are at most that kind's window apart (inclusive:
  exactly 90 days apart is still linked with a 90-day window). The window applies to each link.
- A **group** is a connected set of links (union-find): A-B and B-C put A, B and C in one group
  even when A and C share nothing, and even when A and C are further apart than the window, as
  long as every link on the chain is within its own window. A ring that keeps applying every few
  weeks stays one group: that is what 团伙 detection is for.
- For **one application being decided** (`LinkIndex.links_for`), only the past counts and only
  the last W days, W being the largest window: its group is the group `group_applications` would
  find among the applications made in [at - W, at] plus itself. Chains do not reach outside that
  period, so the group of a new application never grows without bound through old history.

Values are normalised before they are compared (NORMALISERS); empty, placeholder and
configured-to-ignore values (a dealer's own shop phone or tablet) never link anything.

Indexing: one sorted list of timestamps per (kind, value). Within one value, linking each
application to the next one in time is enough (if a and c are within the window, so is every
application between them), so grouping is O(n log n); a query expands each value's run of
applications once.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from carloan.identifiers import normalize_phone

KINDS = ("phone", "device", "address", "bank_card")
DEFAULT_WINDOW_DAYS: dict[str, int] = {"phone": 90, "device": 30, "address": 180, "bank_card": 90}


# --- normalisation -----------------------------------------------------------------------
_PROVINCES = (
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|"
    "湖南|广东|广西|海南|重庆|四川|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|台湾|香港|澳门"
)
_PROVINCE_SUFFIX = "壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市"
# A province name at the start, with its suffix, or without it unless what follows shows the name
# is part of a street or district (天津市河北区 -> 河北区 stays; 南京山西路 is not a province).
_PROVINCE_RE = re.compile(
    rf"^(?:中国)?(?:(?:{_PROVINCES})(?:{_PROVINCE_SUFFIX})|(?:{_PROVINCES})(?![区县路街道巷村镇里]))"
)
_NOISE_RE = re.compile(r"[\W_]+")  # anything but letters and digits (CJK characters are letters)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_CN_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER_RE = re.compile(
    r"([零〇一二两三四五六七八九十百千]+)(?=号楼|栋|幢|座|单元|层|楼|室|号|期)"
)
_CN_TRAILING_RE = re.compile(  # 2号楼一二零一: a room number at the end
    r"(?:(?<=号楼)|(?<=栋)|(?<=幢)|(?<=座)|(?<=单元)|(?<=层))([零〇一二两三四五六七八九十百千]+)$"
)
_BUILDING_RE = re.compile(r"([0-9a-z]+)(?:号楼|幢|座|栋)")
_ROOM_RE = re.compile(r"([0-9]+)(?:号房|房|室)")
_TRAILING_ROOM_RE = re.compile(r"(单元|栋|层)([0-9]+)$")


def _chinese_number(text: str) -> str:
    """三 -> 3, 十二 -> 12, 二十三 -> 23, 一千二百零一 -> 1201; without 十百千 digit by digit:
    一二零一 -> 1201."""
    if not any(ch in _CN_UNITS for ch in text):
        return "".join(str(_CN_DIGITS[ch]) for ch in text)
    total, current = 0, 0
    for ch in text:
        if ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            current = _CN_DIGITS[ch]
    return str(total + current)


def normalise_address(text: str) -> str:
    """A Chinese address reduced so that the usual ways of writing the same place compare equal:

    1. NFKC: full-width letters, digits and punctuation become half-width, the ideographic space
       a space (１２号 -> 12号);
    2. lower case; everything but letters and digits removed (spaces, , 。 - # · ( ) ...);
    3. a leading 中国 and province (陕西省, 广西壮族自治区, 北京市, or the bare name) dropped, since
       people often leave it out;
    4. Chinese numerals before a building/unit/floor/room word, or ending the address after
       one, become digits (三号楼 -> 3号楼, 2栋一二零一 -> 2栋1201);
    5. building words unified to 栋 (号楼, 幢, 座: 3号楼 = 3栋 = 3幢), rooms to 室 (房, 号房), and
       trailing digits after 单元/栋/层 read as a room (2单元502 = 2单元502室).

    Not handled (a geocoder's job): a left-out city or district, 市/区 written or not after a
    city, abbreviations of street names, and 楼/门 (floor or building, unit or gate: ambiguous).
    """
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _NOISE_RE.sub("", text)
    text = _PROVINCE_RE.sub("", text, count=1)
    text = _CN_NUMBER_RE.sub(lambda m: _chinese_number(m.group(1)), text)
    text = _CN_TRAILING_RE.sub(lambda m: _chinese_number(m.group(1)), text)
    text = _BUILDING_RE.sub(r"\1栋", text)
    text = _ROOM_RE.sub(r"\1室", text)
    return _TRAILING_ROOM_RE.sub(r"\1\2室", text)


def _normalise_phone(text: str) -> str | None:
    phone = normalize_phone(unicodedata.normalize("NFKC", text or ""))
    return phone if phone.isdigit() and len(phone) >= 7 else None


# What a device SDK reports when it has nothing (iOS with ad tracking limited reports the all-zero
# IDFA; Android emulators and broken SDKs report the others).
_NO_DEVICE = frozenset({"", "unknown", "null", "none", "undefined", "nil", "0"})
_ZEROS_RE = re.compile(r"^[0\-]+$")


def _normalise_device(text: str) -> str | None:
    device = (text or "").strip().lower()
    if device in _NO_DEVICE or _ZEROS_RE.match(device):
        return None
    return device


def _normalise_card(text: str) -> str | None:
    card = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text or ""))
    return card if card.isdigit() and 12 <= len(card) <= 19 else None  # ISO/IEC 7812 lengths


NORMALISERS: dict[str, Callable[[str], str | None]] = {
    "phone": _normalise_phone,
    "device": _normalise_device,
    "address": normalise_address,
    "bank_card": _normalise_card,
}


# --- configuration and input -------------------------------------------------------------
@dataclass(frozen=True)
class LinkConfig:
    windows: Mapping[str, dt.timedelta] = field(
        default_factory=lambda: {k: dt.timedelta(days=d) for k, d in DEFAULT_WINDOW_DAYS.items()}
    )
    min_address_length: int = 8  # characters after normalisation; shorter is too vague to link
    ignore: Mapping[str, frozenset[str]] = field(default_factory=dict)  # normalised values
    max_group_size: int = 1000  # a query stops expanding there (the result says truncated)

    def __post_init__(self) -> None:
        for kind, window in self.windows.items():
            if kind not in NORMALISERS:
                raise ValueError(f"unknown link kind {kind!r}: use {', '.join(NORMALISERS)}")
            if not isinstance(window, dt.timedelta) or window < dt.timedelta(0):
                raise ValueError(f"the window of {kind} must be a timedelta >= 0, got {window!r}")
        unknown = set(self.ignore) - set(self.windows)
        if unknown:
            raise ValueError(f"ignore lists for kinds without a window: {sorted(unknown)}")
        if self.max_group_size < 2:
            raise ValueError("max_group_size must be at least 2")

    @classmethod
    def days(cls, **windows: int) -> LinkConfig:
        """LinkConfig.days(phone=90, device=30): only these kinds, windows in days."""
        return cls(windows={kind: dt.timedelta(days=d) for kind, d in windows.items()})

    def normalise(self, kind: str, raw: str | None) -> str | None:
        if raw is None or kind not in self.windows:
            return None
        value = NORMALISERS[kind](raw)
        if not value:
            return None
        if kind == "address" and len(value) < self.min_address_length:
            return None
        if value in self.ignore.get(kind, ()):
            return None
        return value


@dataclass(frozen=True, eq=False)
class LinkApplication:
    id: Hashable
    at: dt.datetime  # aware
    values: Mapping[str, str | None]  # kind -> raw value ("phone": "+86 138 0013 8000", ...)
    bad: bool = False  # a bad outcome is known (fraud confirmed, defaulted, ...)

    def __post_init__(self) -> None:
        if not isinstance(self.at, dt.datetime) or self.at.utcoffset() is None:
            raise ValueError(f"application {self.id!r}: 'at' must be an aware datetime")
        unknown = set(self.values) - set(NORMALISERS)
        if unknown:
            raise ValueError(
                f"application {self.id!r}: unknown link kinds {sorted(unknown)} "
                f"(use {', '.join(NORMALISERS)})"
            )


# --- results -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkGroup:
    ids: tuple[Hashable, ...]  # in time order
    kinds: frozenset[str]  # kinds of the links inside the group
    bad_members: int
    first_at: dt.datetime
    last_at: dt.datetime

    @property
    def size(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LinkMember:
    id: Hashable
    at: dt.datetime
    bad: bool
    direct_kinds: frozenset[str]  # kinds shared directly with the application; empty = via others


@dataclass(frozen=True)
class LinkResult:
    id: Hashable
    members: tuple[LinkMember, ...]  # the group without the application itself, in time order
    kinds: frozenset[str]  # kinds of the links inside the group
    truncated: bool = False  # max_group_size reached: there may be more

    @property
    def group_size(self) -> int:
        return 1 + len(self.members)

    @property
    def bad_members(self) -> int:
        return sum(1 for m in self.members if m.bad)

    @property
    def direct_links(self) -> int:
        return sum(1 for m in self.members if m.direct_kinds)

    @property
    def direct_kinds(self) -> frozenset[str]:
        return frozenset().union(*(m.direct_kinds for m in self.members))

    def features(self) -> dict[str, object]:
        """The links.* features of the rule schema."""
        return {
            "links.group_size": self.group_size,
            "links.direct_links": self.direct_links,
            "links.bad_members": self.bad_members,
            "links.kinds": sorted(self.kinds),
        }


# --- the index ---------------------------------------------------------------------------
Key = tuple[str, str]


class _Bucket:
    """The applications sharing one (kind, value), in time order."""

    __slots__ = ("rows", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rows: list[int] = []

    def insert(self, t: float, row: int) -> None:
        if not self.times or t >= self.times[-1]:
            self.times.append(t)
            self.rows.append(row)
        else:
            pos = bisect.bisect_right(self.times, t)
            self.times.insert(pos, t)
            self.rows.insert(pos, row)

    def position(self, t: float, row: int) -> int:
        pos = bisect.bisect_left(self.times, t)
        while self.rows[pos] != row:
            pos += 1
        return pos


class LinkIndex:
    """Applications indexed by their normalised values. Build it with the history (or the last W
    days of it), then ask `links_for(application)` per new application, or `groups()`."""

    def __init__(
        self, applications: Iterable[LinkApplication] = (), config: LinkConfig | None = None
    ) -> None:
        self.config = config or LinkConfig()
        self._windows = {k: w.total_seconds() for k, w in self.config.windows.items()}
        self._horizon = max(self._windows.values(), default=0.0)
        self._apps: list[LinkApplication] = []
        self._times: list[float] = []
        self._keys: list[tuple[Key, ...]] = []
        self._rows: dict[Hashable, int] = {}
        self._buckets: dict[Key, _Bucket] = {}
        self.extend(applications)

    def __len__(self) -> int:
        return len(self._apps)

    def keys_of(self, application: LinkApplication) -> tuple[Key, ...]:
        """The (kind, normalised value) pairs an application can link by."""
        keys = []
        for kind, raw in application.values.items():
            value = self.config.normalise(kind, raw)
            if value is not None:
                keys.append((kind, value))
        return tuple(keys)

    def add(self, application: LinkApplication) -> None:
        if application.id in self._rows:
            raise ValueError(f"application {application.id!r} is already indexed")
        row = len(self._apps)
        t = application.at.timestamp()
        keys = self.keys_of(application)
        self._apps.append(application)
        self._times.append(t)
        self._keys.append(keys)
        self._rows[application.id] = row
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            bucket.insert(t, row)

    def extend(self, applications: Iterable[LinkApplication]) -> None:
        for application in applications:
            self.add(application)

    # --- every group ---------------------------------------------------------------------
    def groups(self) -> list[LinkGroup]:
        """Every group of two or more applications (union-find over consecutive links)."""
        parent = list(range(len(self._apps)))
        kinds: dict[int, set[str]] = {}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]  # path halving
                x = parent[x]
            return x

        for (kind, _value), bucket in self._buckets.items():
            window = self._windows[kind]
            times, rows = bucket.times, bucket.rows
            for i in range(1, len(times)):
                if times[i] - times[i - 1] > window:
                    continue
                a, b = find(rows[i - 1]), find(rows[i])
                if a != b:
                    if len(kinds.get(a, ())) > len(kinds.get(b, ())):
                        a, b = b, a
                    parent[a] = b
                    kinds.setdefault(b, set()).update(kinds.pop(a, ()))
                kinds.setdefault(b, set()).add(kind)
        members: dict[int, list[int]] = {}
        for row in range(len(self._apps)):
            members.setdefault(find(row), []).append(row)
        groups = []
        for root, rows in members.items():
            if len(rows) < 2:
                continue
            rows.sort(key=lambda r: (self._times[r], r))
            groups.append(
                LinkGroup(
                    ids=tuple(self._apps[r].id for r in rows),
                    kinds=frozenset(kinds.get(root, ())),
                    bad_members=sum(1 for r in rows if self._apps[r].bad),
                    first_at=self._apps[rows[0]].at,
                    last_at=self._apps[rows[-1]].at,
                )
            )
        groups.sort(key=lambda g: (g.first_at, len(g.ids)))
        return groups

    # --- one application -----------------------------------------------------------------
    def links_for(self, application: LinkApplication) -> LinkResult:
        """The group of `application` among the indexed applications of [at - W, at] (W: the
        largest window); `application` itself may be indexed or not."""
        t = application.at.timestamp()
        lo, hi = t - self._horizon, t
        own_row = self._rows.get(application.id)
        if own_row is not None and self._apps[own_row] is not application:
            own_row = None  # another object with the same id: treat the argument as new
        root_keys = self._keys[own_row] if own_row is not None else self.keys_of(application)
        limit = self.config.max_group_size - 1

        direct: dict[int, set[str]] = {}
        for kind, value in root_keys:
            bucket = self._buckets.get((kind, value))
            if bucket is None:
                continue
            start = bisect.bisect_left(bucket.times, max(lo, t - self._windows[kind]))
            stop = bisect.bisect_right(bucket.times, hi)
            for row in bucket.rows[start:stop]:
                if row != own_row:
                    direct.setdefault(row, set()).add(kind)

        seen: dict[int, None] = {}  # insertion-ordered set of member rows
        done: dict[Key, set[int]] = {}  # bucket positions whose run is already taken
        kinds: set[str] = set()
        queue: deque[tuple[float, tuple[Key, ...], int | None]] = deque()
        queue.append((t, root_keys, own_row))
        truncated = False
        while queue and not truncated:
            tx, keys, row_x = queue.popleft()
            for key in keys:
                bucket = self._buckets.get(key)
                if bucket is None:
                    continue
                taken = done.setdefault(key, set())
                pos = None if row_x is None else bucket.position(tx, row_x)
                if pos is not None:
                    if pos in taken:
                        continue  # x's run in this bucket was expanded from another member
                    taken.add(pos)
                for p in self._run(bucket, tx, pos, self._windows[key[0]], lo, hi):
                    taken.add(p)
                    row = bucket.rows[p]
                    if row == own_row or row in seen:
                        continue
                    kinds.add(key[0])
                    if len(seen) >= limit:
                        truncated = True
                        break
                    seen[row] = None
                    queue.append((self._times[row], self._keys[row], row))
                if truncated:
                    break
        rows = sorted(seen, key=lambda r: (self._times[r], r))
        members = tuple(
            LinkMember(
                id=self._apps[r].id,
                at=self._apps[r].at,
                bad=self._apps[r].bad,
                direct_kinds=frozenset(direct.get(r, ())),
            )
            for r in rows
        )
        return LinkResult(application.id, members, frozenset(kinds), truncated)

    @staticmethod
    def _run(
        bucket: _Bucket, tx: float, pos: int | None, window: float, lo: float, hi: float
    ) -> Iterable[int]:
        """Positions chained to time `tx` in this bucket: each step within the window, all
        within [lo, hi]. `pos` is x's own position, or None when x is not in the bucket."""
        times = bucket.times
        if pos is None:
            right = bisect.bisect_right(times, tx)
            left = right - 1
        else:
            left, right = pos - 1, pos + 1
        prev, j = tx, left
        while j >= 0 and times[j] >= lo and prev - times[j] <= window:
            if times[j] <= hi:
                yield j
            prev, j = times[j], j - 1
        prev, j = tx, right
        while j < len(times) and times[j] <= hi and times[j] - prev <= window:
            if times[j] >= lo:
                yield j
            prev, j = times[j], j + 1


def group_applications(
    applications: Iterable[LinkApplication], config: LinkConfig | None = None
) -> list[LinkGroup]:
    """Every group of two or more linked applications, oldest first."""
    return LinkIndex(applications, config).groups()


def links_for(
    application: LinkApplication,
    history: Iterable[LinkApplication],
    config: LinkConfig | None = None,
) -> LinkResult:
    """One application's group among `history` (build a LinkIndex once for many queries)."""
    return LinkIndex(history, config).links_for(application)
