"""TURN for RadioCore: time-limited credentials in coturn's `use-auth-secret` format, and the
coturn configuration of a deployment. Standard library only: the server imports it, and it
imports nothing of the project.

- `credentials`: `TurnCredentialIssuer` issues a username/password pair per client that coturn
  checks with the shared secret alone (no user database), valid for a bounded time.
"""
