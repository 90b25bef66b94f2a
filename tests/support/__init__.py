"""Helpers the tests share: one of each (rigctld harness, waiting, seeding, processes)."""
