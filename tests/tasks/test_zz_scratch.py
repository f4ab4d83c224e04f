import pytest
from django.contrib.auth.models import Permission
from accounts.models import Role

@pytest.mark.parametrize("value", ["99999999999999999999999", "-99999999999999999999999", "1.5", "1e30", "9223372036854775808", "NaN", "Infinity"])
@pytest.mark.parametrize("url", ["/api/v1/vehicles/?customer=", "/api/v1/tasks/?vehicle=", "/api/v1/credit/applications/?dealer=", "/api/v1/alarms/?vehicle=", "/api/v1/customers/?parent=", "/api/v1/devices/?customer="])
def test_x(world, api, url, value):
    role = Role.objects.get(customer=world.customers["a"], name="Administrator")
    role.permissions.set(Permission.objects.all())
    r = api(world.users["a_admin"]).get(url + value)
    assert r.status_code < 500, r.status_code
