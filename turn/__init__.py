"""TURN for RadioCore: time-limited credentials in coturn's `use-auth-secret` format, the
coturn configuration of a deployment, and the allocation check. The standard library only,
except `probe` (aioice's public TURN client); nothing of the project beyond `turn` itself.

- `credentials`: `TurnCredentialIssuer` issues a username/password pair per client that coturn
  checks with the shared secret alone (no user database), valid for a bounded time.
- `urls`: parsing and checking STUN/TURN URLs.
- `coturn_config`: the hardened coturn configuration `radiocore turn config|run` writes.
- `probe`: does the relay grant an allocation (server start-up, `/health`; the agent uses it to
  pick the TURN transport that answers).
"""
