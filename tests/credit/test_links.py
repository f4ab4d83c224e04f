"""Fraud links (credit/links.py): normalisation, windows, grouping, one application's group."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from credit.links import (
    LinkApplication,
    LinkConfig,
    LinkIndex,
    group_applications,
    links_for,
    normalise_address,
)
from credit.rules import compile_condition

T0 = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def la(id_, day: float, bad: bool = False, **values: str | None) -> LinkApplication:
    return LinkApplication(id=id_, at=T0 + day * DAY, values=values, bad=bad)


def ids(groups) -> list[tuple]:
    return [g.ids for g in groups]


# --- normalisation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "陕西省西安市雁塔区　科技路１２号　３号楼２单元５０２",
            "西安市雁塔区科技路12号3栋2单元502室",
        ),
        ("天津市河北区中山路十二号楼三单元1201", "河北区中山路12幢3单元1201室"),
        (
            "广西壮族自治区南宁市青秀区民族大道１００号Ａ座１８０８房",
            "南宁市青秀区民族大道100号a栋1808室",
        ),
        ("中国北京市朝阳区建国路88号院 2号楼 一二零一", "北京朝阳区建国路88号院2座1201"),
        ("上海市浦东新区世纪大道100号, 二十三层", "浦东新区世纪大道100号23层"),
    ],
)
def test_address_variants_compare_equal(a, b):
    assert normalise_address(a) == normalise_address(b)


def test_address_normalisation_keeps_what_differs():
    assert normalise_address("南京市山西路8号") == "南京市山西路8号"  # a street, not 山西省
    assert normalise_address("天津市河北区") == "河北区"  # the district survives
    assert normalise_address("西安市雁塔区3栋201") != normalise_address("西安市雁塔区3栋202")


def test_values_are_normalised_and_placeholders_never_link():
    config = LinkConfig()
    assert config.normalise("phone", "+86 138-0013-8000") == "13800138000"
    assert config.normalise("phone", "n/a") is None
    assert config.normalise("bank_card", "6222 0202 0000 1234 567") == "6222020200001234567"
    assert config.normalise("bank_card", "1234") is None
    assert config.normalise("device", " ABC-123 ") == "abc-123"
    for nothing in ("", "unknown", "00000000-0000-0000-0000-000000000000", None):
        assert config.normalise("device", nothing) is None
    assert config.normalise("address", "西安市") is None  # too vague: everyone would link


# --- grouping ----------------------------------------------------------------------------
def test_window_edges_are_inclusive_per_kind():
    config = LinkConfig.days(phone=90, device=30)
    apps = [
        la("p0", 0, phone="13800138000"),
        la("p90", 90, phone="13800138000"),  # exactly 90 days: linked
        la("q0", 0, phone="13900139000"),
        la("q90+", 90 + 1 / 86400, phone="13900139000"),  # one second more: not linked
        la("d0", 0, device="dev-1"),
        la("d31", 31, device="dev-1"),  # 31 days > the device window of 30
    ]
    assert ids(group_applications(apps, config)) == [("p0", "p90")]


def test_different_kinds_chain_into_one_group():
    apps = [
        la("A", 0, phone="13800138000"),
        la("B", 1, phone="13800138000", device="dev-1"),
        la("C", 2, device="dev-1", bank_card="6222020200001234567"),
        la("D", 3, bank_card="6222 0202 0000 1234 567", bad=True),
        la("E", 4, address="西安市雁塔区科技路12号3栋2单元502室"),
        la("F", 5, address="陕西省西安市雁塔区科技路１２号３号楼２单元５０２"),
        la("G", 6, phone="13700137000"),
    ]
    groups = group_applications(apps)
    assert ids(groups) == [("A", "B", "C", "D"), ("E", "F")]
    assert groups[0].kinds == {"phone", "device", "bank_card"}
    assert (groups[0].bad_members, groups[0].size) == (1, 4)
    assert groups[1].kinds == {"address"}
    assert (groups[0].first_at, groups[0].last_at) == (T0, T0 + 3 * DAY)


def test_chains_are_transitive_beyond_the_window_in_batch_grouping():
    # every 60 days on one phone: A-B and B-C are links, A and C are 120 days apart
    apps = [la(n, d, phone="13800138000") for n, d in (("A", 0), ("B", 60), ("C", 120))]
    assert ids(group_applications(apps, LinkConfig.days(phone=90))) == [("A", "B", "C")]


def test_ignored_values_never_link():
    dealer = "029-88886666"
    config = LinkConfig(
        windows={"phone": dt.timedelta(days=90)}, ignore={"phone": frozenset({"02988886666"})}
    )
    apps = [la("A", 0, phone=dealer), la("B", 1, phone=dealer)]
    assert group_applications(apps, config) == []
    assert len(group_applications(apps, LinkConfig.days(phone=90))) == 1


# --- one application ---------------------------------------------------------------------
def test_one_application_sees_its_group_with_direct_kinds():
    history = [
        la("A", 0, phone="13800138000", bad=True),
        la("B", 10, device="dev-1"),
        la("C", 20, device="dev-1", phone="13900139000"),
        la("X", 25, phone="13700137000"),
    ]
    new = la("N", 28, phone="13800138000", device="dev-1")
    result = links_for(new, history)
    assert [m.id for m in result.members] == ["A", "B", "C"]
    assert {m.id: m.direct_kinds for m in result.members} == {
        "A": {"phone"},
        "B": {"device"},
        "C": {"device"},
    }
    assert (result.group_size, result.direct_links, result.bad_members) == (4, 3, 1)
    assert result.kinds == {"phone", "device"}
    assert result.features() == {
        "links.group_size": 4,
        "links.direct_links": 3,
        "links.bad_members": 1,
        "links.kinds": ["device", "phone"],
    }
    rule = compile_condition("links.group_size >= 3 and links.bad_members > 0")
    assert rule.evaluate(result.features()).value is True


def test_members_through_others_have_no_direct_kinds():
    history = [la("A", 0, phone="13800138000"), la("B", 5, phone="13800138000", device="d2")]
    result = links_for(la("N", 6, device="d2"), history)
    assert {m.id: m.direct_kinds for m in result.members} == {"A": frozenset(), "B": {"device"}}
    assert (result.group_size, result.direct_links) == (3, 1)


def test_one_application_only_looks_back_over_the_largest_window():
    config = LinkConfig.days(phone=90, device=30)  # W = 90 days
    history = [
        la("old", 0, phone="13800138000"),  # linked to B, but 150 days before N
        la("B", 60, phone="13800138000", device="dev-1"),
        la("C", 130, device="dev-1"),  # B-C is 70 days: over the device window
        la("D", 140, device="dev-1"),
        la("future", 151, device="dev-1"),  # after N: a decision never sees the future
    ]
    new = la("N", 150, device="dev-1", phone="13800138000")
    result = LinkIndex(history, config).links_for(new)
    assert [m.id for m in result.members] == ["B", "C", "D"]  # not "old", not "future"
    # batch grouping over everything chains "old" in: the window applies to each link only
    everything = group_applications([*history, new], config)
    assert ids(everything) == [("old", "B", "C", "D", "N", "future")]


def test_an_indexed_application_finds_its_group_without_itself():
    apps = [la("A", 0, phone="13800138000"), la("B", 1, phone="13800138000")]
    index = LinkIndex(apps)
    assert [m.id for m in index.links_for(apps[1]).members] == ["A"]
    assert index.links_for(apps[0]).members == ()  # B came later
    assert index.links_for(la("Z", 2, phone="13600136000")).group_size == 1


def test_big_groups_are_truncated_and_say_so():
    config = LinkConfig(windows={"device": dt.timedelta(days=30)}, max_group_size=10)
    history = [la(i, i / 100, device="shared") for i in range(50)]
    result = LinkIndex(history, config).links_for(la("N", 1, device="shared"))
    assert result.truncated and result.group_size == 10


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: la("A", 0, email="x@example.com"), "unknown link kinds"),
        (lambda: LinkApplication("A", dt.datetime(2024, 1, 1), {}), "aware datetime"),  # noqa: DTZ001
        (lambda: LinkConfig.days(email=3), "unknown link kind"),
        (lambda: LinkConfig.days(phone=-1), "must be a timedelta >= 0"),
        (lambda: LinkIndex([la("A", 0), la("A", 1)]), "already indexed"),
    ],
)
def test_bad_input_is_refused_clearly(make, words):
    with pytest.raises(ValueError, match=words):
        make()


# --- against a brute force ---------------------------------------------------------------
def _random_apps(seed: int, n: int = 160) -> list[LinkApplication]:
    rng = random.Random(seed)
    apps = []
    for i in range(n):
        values = {}
        if rng.random() < 0.7:
            values["phone"] = f"1380013{rng.randrange(40):04d}"
        if rng.random() < 0.5:
            values["device"] = f"dev-{rng.randrange(30)}"
        if rng.random() < 0.3:
            values["bank_card"] = f"6222020200{rng.randrange(20):06d}"
        apps.append(la(i, rng.uniform(0, 400), bad=rng.random() < 0.1, **values))
    return apps


def _brute_components(apps, config, keep=lambda a: True):
    apps = [a for a in apps if keep(a)]
    parent = {a.id: a.id for a in apps}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for i, a in enumerate(apps):
        for b in apps[i + 1 :]:
            for kind, window in config.windows.items():
                va = config.normalise(kind, a.values.get(kind))
                vb = config.normalise(kind, b.values.get(kind))
                if va is not None and va == vb and abs(a.at - b.at) <= window:
                    parent[find(a.id)] = find(b.id)
    comps: dict = {}
    for a in apps:
        comps.setdefault(find(a.id), set()).add(a.id)
    return comps, find


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouping_matches_all_pairs_brute_force(seed):
    config = LinkConfig.days(phone=60, device=20, bank_card=45)
    apps = _random_apps(seed)
    comps, _find = _brute_components(apps, config)
    expected = {frozenset(c) for c in comps.values() if len(c) > 1}
    assert {frozenset(g.ids) for g in group_applications(apps, config)} == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_links_for_matches_brute_force_over_the_window(seed):
    config = LinkConfig.days(phone=60, device=20, bank_card=45)
    apps = _random_apps(seed)
    index = LinkIndex(apps, config)
    horizon = max(config.windows.values())
    for new in apps[::7]:
        window = (new.at - horizon, new.at)
        comps, find = _brute_components(
            apps, config, keep=lambda a, w=window, n=new: w[0] <= a.at <= w[1] or a is n
        )
        expected = comps[find(new.id)] - {new.id}
        assert {m.id for m in index.links_for(new).members} == expected
