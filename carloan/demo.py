"""The demo data set behind `manage.py load_demo`.

A customer tree (platform -> two lenders -> their branches) with branding on the lenders, roles per
lender, one user per persona with a fixed password, a device catalogue over the three protocols, and
financed vehicles around Xi'an with their borrowers, loans and trackers, plus each lender's device
stock.

Everything is created through the services, as an operator would create it; only the trackers'
last-known state is written directly (see `_set_demo_state`). The data is deterministic for a
given seed, except that dates are relative to today. The tree rooted at the customer with code
`platform` marks the demo: a second run finds it and creates nothing; `reset=True` deletes that
tree and everything in it first.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TextIO

from django.contrib.auth.models import Permission
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuthEvent, Customer, Role, User
from accounts.services import customer_create, role_save, user_create
from carloan import fakes
from carloan.errors import ApplicationError
from devices.models import Device, DeviceKind, DeviceModel, Manufacturer, StockMove, WorkMode
from devices.services import device_create, device_model_save, manufacturer_save
from vehicles.models import DeviceBinding, Vehicle
from vehicles.services import device_bind, vehicle_create

DEFAULT_SEED = 20261122
DEFAULT_VEHICLES = 200
PLATFORM_CODE = "platform"
# Children of the platform that mark its tree as the demo's (reset refuses to delete anything else).
DEMO_LENDER_CODES = ("changan", "xibu")

# Centre of Xi'an (钟楼); positions scatter within +- 0.3 degrees of it.
XIAN_LAT, XIAN_LON = 34.26, 108.94


class DemoError(ApplicationError):
    default_code = "demo_error"


# --- The tree, roles and personas ---------------------------------------------------------------
@dataclass(frozen=True)
class CustomerSpec:
    code: str
    name: str
    parent: str | None
    brand_title: str = ""
    contact_name: str = ""
    contact_phone: str = ""


CUSTOMERS = (
    CustomerSpec("platform", "carloan 平台", None, contact_name="平台运营"),
    CustomerSpec(
        "changan",
        "长安汽车金融 (西安)",
        "platform",
        brand_title="长安汽车金融 · 车贷风控",
        contact_name="李建国",
        contact_phone="13991234501",
    ),
    CustomerSpec(
        "changan-yanta", "雁塔支行", "changan", contact_name="王磊", contact_phone="13991234502"
    ),
    CustomerSpec(
        "changan-weiyang", "未央支行", "changan", contact_name="赵敏", contact_phone="13991234503"
    ),
    CustomerSpec(
        "xibu",
        "西部融资租赁",
        "platform",
        brand_title="西部融资租赁 · GPS 风控平台",
        contact_name="张卫东",
        contact_phone="13891234504",
    ),
    CustomerSpec(
        "xibu-xianyang", "咸阳分公司", "xibu", contact_name="陈静", contact_phone="13891234505"
    ),
)

ALL_APPS = ("accounts", "devices", "vehicles", "alarms", "credit", "tasks")
# role key -> (name, description, permissions; None = every permission of ALL_APPS)
ROLES: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "admin": (
        "管理员",
        "Administrator: every permission of accounts, devices, vehicles, alarms, credit, tasks",
        None,
    ),
    "operator": (
        "风控专员",
        "Operator: view / add / change vehicles, devices and bindings; view customers",
        (
            "vehicles.view_vehicle",
            "vehicles.add_vehicle",
            "vehicles.change_vehicle",
            "vehicles.view_devicebinding",
            "vehicles.add_devicebinding",
            "vehicles.change_devicebinding",
            "devices.view_device",
            "devices.add_device",
            "devices.change_device",
            # Picking a model when adding a device needs to see the catalogue.
            "devices.view_devicemodel",
            "devices.view_manufacturer",
            "accounts.view_customer",
            # The live map, the alarm centre and commands (fuel cut needs devices.send_fuel_cut).
            "devices.view_command",
            "devices.add_command",
            "alarms.view_alarm",
            "alarms.view_alarmevent",
            "alarms.handle_alarm",
            "alarms.view_riskpoint",
            "alarms.view_geofence",
            "alarms.view_annotation",
            "alarms.add_annotation",
            "alarms.view_arming",
            "alarms.add_arming",
            # Dispatching and checking field work; pre-loan applications.
            "tasks.view_workorder",
            "tasks.add_workorder",
            "tasks.dispatch_workorder",
            "tasks.verify_workorder",
            "credit.view_application",
            "credit.add_application",
        ),
    ),
    "installer": (
        "安装工",
        "Installer: view vehicles and devices, mount devices (add binding)",
        (
            "vehicles.view_vehicle",
            "vehicles.view_devicebinding",
            "vehicles.add_devicebinding",
            "devices.view_device",
            "accounts.view_customer",
            "tasks.view_workorder",
            "tasks.work_workorder",
            "alarms.view_annotation",
            "alarms.add_annotation",
        ),
    ),
    "field": (
        "外勤",
        "Field worker (salesman, repossession): view vehicles, devices, alarms; work orders",
        (
            "vehicles.view_vehicle",
            "vehicles.view_devicebinding",
            "devices.view_device",
            "accounts.view_customer",
            "alarms.view_alarm",
            "tasks.view_workorder",
            "tasks.work_workorder",
            "alarms.view_annotation",
            "alarms.add_annotation",
        ),
    ),
}


@dataclass(frozen=True)
class Persona:
    username: str
    password: str
    customer_code: str
    sees: str
    role: str | None = None  # a key of ROLES, owned by the persona's lender
    kind: str = User.Kind.STAFF
    is_staff: bool = True
    is_superuser: bool = False
    first_name: str = ""
    last_name: str = ""
    phone: str = ""

    @property
    def customer_name(self) -> str:
        return next(c.name for c in CUSTOMERS if c.code == self.customer_code)


PERSONAS = (
    Persona(
        "admin",
        "demo-admin-2026",
        "platform",
        "everything (platform superuser); the admin site at /admin/",
        is_superuser=True,
        first_name="管理员",
        last_name="平台",
    ),
    Persona(
        "changan_admin",
        "demo-changan-2026",
        "changan",
        "长安汽车金融 and its branches 雁塔支行, 未央支行; manages their users and roles",
        role="admin",
        first_name="建国",
        last_name="李",
    ),
    Persona(
        "yanta_operator",
        "demo-yanta-2026",
        "changan-yanta",
        "雁塔支行 only: vehicles, devices, bindings",
        role="operator",
        first_name="磊",
        last_name="王",
    ),
    Persona(
        "xibu_admin",
        "demo-xibu-2026",
        "xibu",
        "西部融资租赁 and 咸阳分公司, nothing of 长安",
        role="admin",
        first_name="卫东",
        last_name="张",
    ),
    Persona(
        "yanta_installer",
        "demo-installer-2026",
        "changan-yanta",
        "installer (mobile API, no admin site): 雁塔支行's vehicles, mounts devices",
        role="installer",
        kind=User.Kind.INSTALLER,
        is_staff=False,
        first_name="师傅",
        last_name="刘",
        phone="13700001111",
    ),
    Persona(
        "weiyang_salesman",
        "demo-salesman-2026",
        "changan-weiyang",
        "salesman (mobile API): 未央支行's vehicles, read only",
        role="field",
        kind=User.Kind.SALESMAN,
        is_staff=False,
        first_name="芳",
        last_name="孙",
        phone="13700002222",
    ),
    Persona(
        "xianyang_recovery",
        "demo-recovery-2026",
        "xibu-xianyang",
        "repossession team (mobile API): 咸阳分公司's vehicles, read only",
        role="field",
        kind=User.Kind.RECOVERY,
        is_staff=False,
        first_name="强",
        last_name="周",
        phone="13700003333",
    ),
)


# --- The device catalogue -----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    key: str
    manufacturer: str
    name: str
    protocol: str
    kind: str
    default_work_mode: str = WorkMode.REALTIME
    battery_capacity_mah: int | None = None
    battery_life_days: int | None = None


MANUFACTURERS = {"concox": "Concox 康凯斯", "jimi": "Jimi 几米", "huabao": "Huabao 华宝"}
DEVICE_MODELS = (
    ModelSpec("gt06n", "concox", "GT06N", "gt06", DeviceKind.WIRED),
    ModelSpec(
        "at4",
        "concox",
        "AT4",
        "gt06",
        DeviceKind.WIRELESS,
        WorkMode.ALARM_CLOCK,
        battery_capacity_mah=10000,
        battery_life_days=1095,
    ),
    ModelSpec("jt808", "jimi", "JT808", "jt808", DeviceKind.WIRED),
    ModelSpec(
        "h02",
        "huabao",
        "H02",
        "h02",
        DeviceKind.WIRELESS,
        WorkMode.ALARM_CLOCK,
        battery_capacity_mah=5000,
        battery_life_days=365,
    ),
)
WIRED_MODELS = ("gt06n", "gt06n", "jt808")
WIRELESS_MODELS = ("at4", "at4", "h02")

# --- Vehicles and borrowers ---------------------------------------------------------------------
# Where the vehicles sit: (customer code, weight, plate authorities). 陕A and 陕U are Xi'an,
# 陕D is Xianyang. A few vehicles sit at lender level, directly under the lender.
VEHICLE_HOLDERS = (
    ("changan-yanta", 35, "AAAU"),
    ("changan-weiyang", 27, "AAAU"),
    ("changan", 8, "AU"),
    ("xibu-xianyang", 22, "DDA"),
    ("xibu", 8, "AU"),
)
CARS = (
    # brand, model, new energy
    ("吉利", "帝豪", False),
    ("长安", "CS75 PLUS", False),
    ("大众", "朗逸", False),
    ("丰田", "卡罗拉", False),
    ("哈弗", "H6", False),
    ("本田", "思域", False),
    ("日产", "轩逸", False),
    ("别克", "英朗", False),
    ("比亚迪", "秦PLUS DM-i", True),
    ("比亚迪", "宋PLUS EV", True),
    ("五菱", "宏光MINIEV", True),
    ("特斯拉", "Model 3", True),
)
COLOURS = ("白色", "黑色", "银色", "灰色", "红色", "蓝色")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
# fmt: off
GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "磊", "强", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
    "秀英", "建华", "志强", "海燕", "晓东", "丽娟", "国庆", "文博", "子涵", "浩然",
)
# fmt: on
# Xi'an districts (GB/T 2260): 新城, 碑林, 莲湖, 灞桥, 未央, 雁塔, 阎良, 临潼, 长安, 高陵, 鄠邑.
# fmt: off
ID_REGIONS = (
    "610102", "610103", "610104", "610111", "610112", "610113", "610114", "610115", "610116",
    "610117", "610118",
)
# fmt: on


# --- Result ---------------------------------------------------------------------------------------
@dataclass
class DemoResult:
    created: bool  # False: the demo tree already existed and nothing was written
    personas: tuple[Persona, ...]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    deleted: dict[str, int] = field(default_factory=dict)  # what a reset removed


def _say(stdout: TextIO | None, message: str) -> None:
    if stdout is not None:
        stdout.write(message + "\n")


def demo_root() -> Customer | None:
    return Customer.objects.filter(code=PLATFORM_CODE).first()


def _require_demo_tree(root: Customer | None) -> Customer | None:
    """`root` when it is the demo's platform (its lenders are there); DemoError when a customer
    with the demo's code exists but is something else: the demo neither reuses nor deletes it."""
    if root is None:
        return None
    child_codes = set(root.get_children().values_list("code", flat=True))
    if not set(DEMO_LENDER_CODES) <= child_codes:
        raise DemoError(
            _(
                "A customer with code '%(code)s' exists but is not the demo's (its lenders "
                "%(lenders)s are missing): not touching it."
            )
            % {"code": PLATFORM_CODE, "lenders": ", ".join(DEMO_LENDER_CODES)}
        )
    return root


def demo_counts() -> dict[str, int]:
    """What the demo tree holds now (one COUNT per kind)."""
    root = demo_root()
    if root is None:
        return dict.fromkeys(
            ("customers", "roles", "users", "vehicles", "devices", "installed", "bindings"), 0
        )
    in_tree = Q(customer__tree_id=root.tree_id)
    return {
        "customers": Customer.objects.filter(tree_id=root.tree_id).count(),
        "roles": Role.objects.filter(in_tree).count(),
        "users": User.objects.filter(in_tree).count(),
        "vehicles": Vehicle.objects.filter(in_tree).count(),
        "devices": Device.objects.filter(in_tree).count(),
        "installed": Device.objects.filter(in_tree, status=Device.Status.INSTALLED).count(),
        "bindings": DeviceBinding.objects.filter(
            vehicle__customer__tree_id=root.tree_id, unbound_at__isnull=True
        ).count(),
    }


# --- Load -----------------------------------------------------------------------------------------
def load_demo(
    *,
    vehicles: int = DEFAULT_VEHICLES,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
    stdout: TextIO | None = None,
) -> DemoResult:
    """Create the demo data set unless it exists (the customer with code `platform`).

    `reset`: first delete the demo tree and everything in it (see `demo_reset`). All or nothing:
    one transaction. Raises DemoError when a persona's username is taken outside the demo, or when
    a reset would delete a `platform` tree that is not the demo's."""
    if vehicles < 0:
        raise DemoError(_("The number of vehicles cannot be negative."))
    started = time.monotonic()
    deleted: dict[str, int] = {}
    with transaction.atomic():
        if reset:
            deleted = demo_reset(stdout=stdout)
        elif _require_demo_tree(demo_root()) is not None:
            _say(
                stdout,
                "The demo data set exists already: nothing created (use --reset to rebuild).",
            )
            return DemoResult(
                created=False,
                personas=PERSONAS,
                counts=demo_counts(),
                seconds=time.monotonic() - started,
            )
        taken = list(
            User.objects.filter(username__in=[p.username for p in PERSONAS]).values_list(
                "username", flat=True
            )
        )
        if taken:
            raise DemoError(
                _("These usernames are taken outside the demo: %(names)s. Rename them first.")
                % {"names": ", ".join(sorted(taken))}
            )
        try:
            _Builder(seed=seed, stdout=stdout).build(vehicles)
        except ValidationError as exc:
            # A generated plate, VIN or device id clashing with data outside the demo.
            raise DemoError(_("The demo data could not be created: %(e)s") % {"e": exc}) from exc
    return DemoResult(
        created=True,
        personas=PERSONAS,
        counts=demo_counts(),
        seconds=time.monotonic() - started,
        deleted=deleted,
    )


class _Builder:
    def __init__(self, *, seed: int, stdout: TextIO | None) -> None:
        # Seeded on purpose (reproducible demo data); nothing here is a secret.
        self.rng = random.Random(seed)  # noqa: S311
        # Trackers' state has its own stream so that it never shifts the identifiers.
        self.state_rng = random.Random(seed + 1)  # noqa: S311
        self.stdout = stdout
        self.now = timezone.now()
        self.today = timezone.localdate()
        self.customers: dict[str, Customer] = {}
        self.roles: dict[tuple[str, str], Role] = {}
        self.models: dict[str, DeviceModel] = {}
        self.used: set[str] = set()  # plates, VINs and device ids handed out so far

    def step(self, message: str, t0: float) -> None:
        _say(self.stdout, f"  {message} ({time.monotonic() - t0:.1f} s)")

    def build(self, vehicles: int) -> None:
        t0 = time.monotonic()
        self.build_tree()
        self.build_roles_and_users()
        self.step("customers, roles and users", t0)
        self.build_catalogue()
        t0 = time.monotonic()
        for _i in range(vehicles):
            self.build_vehicle()
        self.step(f"{vehicles} vehicles with their devices", t0)
        t0 = time.monotonic()
        per_lender = max(8, round(vehicles / 5))
        for lender in DEMO_LENDER_CODES:
            self.build_stock(lender, per_lender)
        self.step(f"{per_lender} devices in stock per lender", t0)
        t0 = time.monotonic()
        from alarms.demo import build_alarm_demo

        made = build_alarm_demo(seed=self.rng.randrange(1 << 30), customers=self.customers)
        self.step(", ".join(f"{n} {what}" for what, n in made.items()), t0)
        t0 = time.monotonic()
        from credit.demo import build_credit_demo

        made = build_credit_demo(seed=self.rng.randrange(1 << 30), customers=self.customers)
        self.step("credit: " + ", ".join(f"{n} {what}" for what, n in made.items()), t0)

    # The tree, roles and users.
    def build_tree(self) -> None:
        for spec in CUSTOMERS:
            parent = self.customers[spec.parent] if spec.parent else None
            if parent is not None:
                # MPTT moved the parent's right edge when its earlier children were inserted.
                parent.refresh_from_db()
            self.customers[spec.code] = customer_create(
                parent=parent,
                name=spec.name,
                code=spec.code,
                brand_title=spec.brand_title,
                contact_name=spec.contact_name,
                contact_phone=spec.contact_phone,
            )
        # Every insert moved the tree edges of earlier nodes; the services read them (role and
        # binding checks compare lft/rght), so use fresh copies from here on.
        for customer in self.customers.values():
            customer.refresh_from_db()

    def build_roles_and_users(self) -> None:
        by_code = {
            f"{p.content_type.app_label}.{p.codename}": p
            for p in Permission.objects.filter(content_type__app_label__in=ALL_APPS).select_related(
                "content_type"
            )
        }
        for lender in DEMO_LENDER_CODES:
            for key, (name, description, codes) in ROLES.items():
                self.roles[(lender, key)] = role_save(
                    customer=self.customers[lender],
                    name=name,
                    description=description,
                    permissions=list(by_code.values())
                    if codes is None
                    else [by_code[c] for c in codes],
                )
        for persona in PERSONAS:
            customer = self.customers[persona.customer_code]
            lender = self._lender_of(persona.customer_code)
            user_create(
                username=persona.username,
                password=persona.password,
                customer=customer,
                kind=persona.kind,
                role=self.roles[(lender, persona.role)] if persona.role else None,
                is_staff=persona.is_staff or persona.is_superuser,
                is_superuser=persona.is_superuser,
                first_name=persona.first_name,
                last_name=persona.last_name,
                phone=persona.phone,
            )

    @staticmethod
    def _lender_of(code: str) -> str:
        return code.split("-", 1)[0]

    # The device catalogue: owned by the platform customer, so the whole tree uses it and a reset
    # removes it with the tree.
    def build_catalogue(self) -> None:
        platform = self.customers[PLATFORM_CODE]
        makers = {
            key: manufacturer_save(customer=platform, name=name)
            for key, name in MANUFACTURERS.items()
        }
        for spec in DEVICE_MODELS:
            self.models[spec.key] = device_model_save(
                customer=platform,
                manufacturer=makers[spec.manufacturer],
                name=spec.name,
                protocol=spec.protocol,
                kind=spec.kind,
                default_work_mode=spec.default_work_mode,
                battery_capacity_mah=spec.battery_capacity_mah,
                battery_life_days=spec.battery_life_days,
            )

    # Vehicles, borrowers, loans and their trackers.
    def unique(self, make) -> str:
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def build_vehicle(self) -> None:
        rng = self.rng
        code, authorities = self._pick_holder()
        # About one car in ten is electric or plug-in hybrid, with the 8-character green plate.
        new_energy = rng.random() < 0.1
        brand, model_name, _ne = rng.choice([car for car in CARS if car[2] == new_energy])
        authority = rng.choice(authorities)
        plate = self.unique(lambda: fakes.make_plate(rng, "陕", authority, new_energy=new_energy))
        start = self.today - dt.timedelta(days=rng.randrange(0, 730))
        roll = rng.random()
        if roll < 0.80:
            status, overdue_days = Vehicle.RepaymentStatus.NORMAL, 0
        elif roll < 0.93:
            status, overdue_days = (
                Vehicle.RepaymentStatus.OVERDUE,
                rng.choice((3, 7, 12, 18, 25, 35, 48, 62, 90, 120, 150)),
            )
        else:
            status, overdue_days = Vehicle.RepaymentStatus.SETTLED, 0
        vehicle = vehicle_create(
            customer=self.customers[code],
            plate=plate,
            vin=self.unique(lambda: fakes.make_vin(rng)),
            brand=brand,
            model_name=model_name,
            colour=rng.choice(COLOURS),
            borrower_name=rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
            borrower_phone=fakes.make_mobile(rng),
            borrower_id_number=fakes.make_id_number(rng, rng.choice(ID_REGIONS)),
            loan_principal=Decimal(rng.randrange(50, 301) * 1000),
            loan_term_months=rng.choice((12, 24, 36)),
            loan_start_date=start,
            repayment_status=status,
            overdue_days=overdue_days,
        )
        wired = self.new_device(code, rng.choice(WIRED_MODELS))
        device_bind(vehicle=vehicle, device=wired)
        mounted = [wired]
        if rng.random() < 0.7:
            wireless = self.new_device(code, rng.choice(WIRELESS_MODELS))
            device_bind(vehicle=vehicle, device=wireless)
            mounted.append(wireless)
        self._set_demo_state(mounted)

    def _pick_holder(self) -> tuple[str, str]:
        code, _weight, authorities = self.rng.choices(
            VEHICLE_HOLDERS, weights=[h[1] for h in VEHICLE_HOLDERS]
        )[0]
        return code, authorities

    def new_device(self, customer_code: str, model_key: str, **fields) -> Device:
        rng = self.rng
        model = self.models[model_key]
        if model.protocol == "gt06":
            make = lambda: fakes.make_imei(rng)  # noqa: E731
        elif model.protocol == "jt808":
            make = lambda: fakes.make_terminal_id(rng, 12)  # noqa: E731
        else:
            make = lambda: fakes.make_terminal_id(rng, 10)  # noqa: E731
        if model.kind == DeviceKind.WIRELESS and "work_mode" not in fields:
            if model_key == "at4" and rng.random() < 0.3:
                fields.update(
                    work_mode=WorkMode.DEEP_SLEEP, work_params={"days": rng.choice((3, 7))}
                )
            else:
                fields.update(
                    work_mode=WorkMode.ALARM_CLOCK,
                    work_params={"times": rng.choice((["08:00"], ["08:00", "20:00"], ["07:30"]))},
                )
        return device_create(
            customer=self.customers[customer_code],
            identifier=self.unique(make),
            protocol=model.protocol,
            kind=model.kind,
            model=model,
            sim_iccid=fakes.make_iccid(rng),
            sim_number=fakes.make_mobile(rng),
            **fields,
        )

    def _set_demo_state(self, devices: list[Device]) -> None:
        """Give mounted trackers a believable last-known state so maps and lists show something.

        Stand-in for the gateway: these fields belong to the gateway's batch writer (T6), which
        does not exist yet. Once the gateway issue lands, the demo should drive
        `simulate_devices` instead and this goes away. One UPDATE per device, no service and no
        operation-log row, exactly as the gateway writes them."""
        rng = self.state_rng
        lat = XIAN_LAT + rng.uniform(-0.3, 0.3)
        lon = XIAN_LON + rng.uniform(-0.3, 0.3)
        moving = rng.random() < 0.35
        for device in devices:
            if device.kind == DeviceKind.WIRED:
                online = rng.random() < 0.85
                seen = self.now - (
                    dt.timedelta(seconds=rng.randrange(5, 120))
                    if online
                    else dt.timedelta(minutes=rng.randrange(90, 60 * 24 * 7))
                )
                state = {
                    "online": online,
                    "last_speed_kmh": round(rng.uniform(15, 75), 1) if online and moving else 0.0,
                    "last_acc": online and moving,
                    "external_voltage": round(
                        rng.uniform(13.6, 14.4) if moving else rng.uniform(12.0, 12.8), 1
                    ),
                    "odometer_km": round(rng.uniform(1_000, 80_000), 1),
                }
                dev_lat, dev_lon = lat, lon
            else:
                # Wireless trackers sleep between their scheduled reports: offline is normal.
                days = (device.work_params or {}).get("days", 1)
                seen = self.now - dt.timedelta(minutes=rng.randrange(10, 60 * 24 * days))
                state = {
                    "online": False,
                    "last_speed_kmh": 0.0,
                    "battery_pct": rng.choice((8, 12))
                    if rng.random() < 0.08
                    else rng.randrange(35, 101),
                }
                # Hidden elsewhere in the car, a few metres from the wired one; now and then
                # far away, as when the wired tracker was ripped out (device separation).
                spread = 0.08 if rng.random() < 0.04 else 0.0002
                dev_lat = lat + rng.uniform(-spread, spread)
                dev_lon = lon + rng.uniform(-spread, spread)
            Device.objects.filter(pk=device.pk).update(
                last_seen_at=seen,
                last_fix_at=seen,
                last_position=Point(round(dev_lon, 6), round(dev_lat, 6), srid=4326),
                last_course=rng.randrange(0, 360),
                gsm_signal=rng.randrange(1, 5),
                satellites=rng.randrange(6, 17),
                **state,
            )

    # Stock: devices waiting to be installed at the lender and its branches; some faulty.
    def build_stock(self, lender: str, count: int) -> None:
        rng = self.rng
        places = [lender] + [c.code for c in CUSTOMERS if c.parent == lender]
        for _i in range(count):
            model_key = rng.choice(WIRED_MODELS + WIRELESS_MODELS)
            code = lender if rng.random() < 0.6 else rng.choice(places)
            if rng.random() < 0.15:
                self.new_device(
                    code,
                    model_key,
                    status=Device.Status.FAULTY,
                    remark=rng.choice(("返厂维修", "无法定位", "SIM 卡失效", "外壳破损")),
                )
            else:
                self.new_device(code, model_key)


# --- Reset ----------------------------------------------------------------------------------------
def demo_reset(*, stdout: TextIO | None = None) -> dict[str, int]:
    """Delete the demo tree (customer `platform` and its subtree) and everything in it: vehicles,
    devices (soft-deleted ones too), bindings, stock moves, users with their login events, roles,
    the catalogue owned by the tree, and the operation-log rows of all of these.

    Refuses a `platform` tree that is not the demo's (its lenders are not there), so it cannot
    wipe a real platform by accident. This is tear-down of demo data, not a business operation: it
    deletes rows directly, children before parents (the foreign keys are PROTECT)."""
    root = _require_demo_tree(demo_root())
    if root is None:
        return {}
    t0 = time.monotonic()
    tree = list(Customer.objects.filter(tree_id=root.tree_id).values_list("pk", flat=True))
    ids = {
        Vehicle: list(Vehicle.all_objects.filter(customer__in=tree).values_list("pk", flat=True)),
        Device: list(Device.all_objects.filter(customer__in=tree).values_list("pk", flat=True)),
        User: list(User.objects.filter(customer__in=tree).values_list("pk", flat=True)),
        Role: list(Role.objects.filter(customer__in=tree).values_list("pk", flat=True)),
        DeviceModel: list(
            DeviceModel.objects.filter(customer__in=tree).values_list("pk", flat=True)
        ),
        Manufacturer: list(
            Manufacturer.objects.filter(customer__in=tree).values_list("pk", flat=True)
        ),
        Customer: tree,
    }
    bindings = DeviceBinding.objects.filter(Q(vehicle__in=ids[Vehicle]) | Q(device__in=ids[Device]))
    ids[DeviceBinding] = list(bindings.values_list("pk", flat=True))
    try:
        with transaction.atomic():
            StockMove.objects.filter(
                Q(device__in=ids[Device]) | Q(from_customer__in=tree) | Q(to_customer__in=tree)
            ).delete()
            bindings.delete()
            Vehicle.all_objects.filter(pk__in=ids[Vehicle]).delete()
            Device.all_objects.filter(pk__in=ids[Device]).delete()
            DeviceModel.objects.filter(pk__in=ids[DeviceModel]).delete()
            Manufacturer.objects.filter(pk__in=ids[Manufacturer]).delete()
            AuthEvent.objects.filter(Q(user__in=ids[User]) | Q(customer__in=tree)).delete()
            User.objects.filter(pk__in=ids[User]).delete()
            Role.objects.filter(pk__in=ids[Role]).delete()
            from alarms.demo import reset_alarm_demo

            reset_alarm_demo()  # the demo's server-wide risk points
            from credit.demo import reset_credit_demo

            reset_credit_demo(tree)  # applications, rules, lists, dealers, products
            # Leaves first: a customer's parent is PROTECTed while it has children.
            for customer in Customer.objects.filter(pk__in=tree).order_by("-level", "-lft"):
                customer.delete()
            # The operation log of demo rows (including the "deleted" rows just written).
            for model, pks in ids.items():
                model.history.filter(id__in=pks).delete()
    except ProtectedError as exc:
        names = sorted({str(type(o)._meta.verbose_name) for o in exc.protected_objects})
        raise DemoError(
            _("The demo data is referenced by other data (%(what)s): delete that first.")
            % {"what": ", ".join(names)}
        ) from exc
    counts = {model._meta.model_name: len(pks) for model, pks in ids.items()}
    _say(
        stdout,
        "Deleted the demo data set: "
        + ", ".join(f"{name} {n}" for name, n in counts.items())
        + f" ({time.monotonic() - t0:.1f} s)",
    )
    return counts


# --- Output ---------------------------------------------------------------------------------------
def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_result(result: DemoResult) -> str:
    """The personas as a table (username / password / customer / what they see) and the counts."""
    rows = [("username", "password", "customer", "sees")] + [
        (p.username, p.password, p.customer_name, p.sees) for p in result.personas
    ]
    widths = [max(_width(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    counts = ", ".join(f"{n} {name}" for name, n in result.counts.items())
    verb = "Created" if result.created else "Existing"
    lines += [
        "",
        f"{verb} demo data set: {counts}.",
        f"Done in {result.seconds:.1f} s. Log in at /admin/ with a staff persona above.",
    ]
    return "\n".join(lines)
