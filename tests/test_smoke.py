def test_world_builds(world):
    assert world.vehicles["a1"].bindings.count() == 1
    assert world.users["a_admin"].has_perm("vehicles.view_vehicle")
    assert world.users["a1_installer"].has_perm("vehicles.add_devicebinding")
    assert not world.users["a1_installer"].has_perm("vehicles.delete_vehicle")
