"""`radiocore bench …`: measured figures (JSON), never timed assertions in tests.

- `sfu`: one publisher, N listeners on loopback: CPU per forwarded packet, latency, RSS;
- `control`: PTT, tuning and dead-man timing through the real agent and Hamlib's dummy rig;
- `api`: admission at join, bookings under contention and sign-ins on a seeded database
  (PostgreSQL through `postgres`, which the tests use too, or SQLite);
- `tools`: a seeded server on loopback, logins, ports and processes (the tests use them too);
- `rig_reader`: reads a rig's state straight from rigctld, on its own connection.
"""
