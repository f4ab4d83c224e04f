"""Device simulator: the tracker side of GT06, JT/T 808 and H02, for `simulate_devices`, the
end-to-end tests and the gateway benchmark.

* `frames`: pure encoders of what real trackers send, and parsers of what the server sends them
  (acks, the JT808 register reply, downlink commands), so a simulated device can answer.
* `routes`: pure, seeded movement of demo vehicles on a street grid around Xi'an.

Nothing here touches Django, sockets or clocks: the management command owns the I/O.
"""
