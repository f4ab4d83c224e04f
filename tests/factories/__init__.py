"""factory_boy factories. Rows that carry business rules (bindings, moves, deletes) are made
through services in the tests, not here."""

from __future__ import annotations

import random

import factory

from accounts.models import Customer, Role, User
from carloan import fakes
from devices.models import Device, DeviceKind, DeviceModel, Manufacturer
from vehicles.models import Vehicle

_rng = random.Random(20261122)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    code = factory.Sequence(lambda n: f"c{n}")
    parent = None


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Role {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    customer = factory.SubFactory(CustomerFactory)
    kind = User.Kind.STAFF
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class ManufacturerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Manufacturer

    name = factory.Sequence(lambda n: f"Maker {n}")


class DeviceModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeviceModel

    name = factory.Sequence(lambda n: f"Model {n}")
    manufacturer = factory.SubFactory(ManufacturerFactory)
    protocol = "gt06"
    kind = DeviceKind.WIRED


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    identifier = factory.LazyFunction(lambda: fakes.make_imei(_rng))
    protocol = "gt06"
    kind = DeviceKind.WIRED
    customer = factory.SubFactory(CustomerFactory)


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    customer = factory.SubFactory(CustomerFactory)
    plate = factory.LazyFunction(lambda: fakes.make_plate(_rng))
    vin = factory.LazyFunction(lambda: fakes.make_vin(_rng))
    brand = "Geely"
    model_name = "Emgrand"
    borrower_name = factory.Sequence(lambda n: f"Borrower {n}")
    borrower_phone = factory.LazyFunction(lambda: fakes.make_mobile(_rng))
    borrower_id_number = factory.LazyFunction(lambda: fakes.make_id_number(_rng))
