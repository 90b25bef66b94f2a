"""Agent configurations for tests: a closed server port, short timers."""

from __future__ import annotations

from board_agent.config import AgentConfig
from tests.support.rigctld import free_port

BOARD = "12345678-1234-4234-8234-123456789abc"
SECRET = "s3cret-s3cret-s3cret"


def make_config(**changes: object) -> AgentConfig:
    """A valid config whose server nobody listens on; `changes` override the defaults."""
    values: dict[str, object] = {
        "server_url": f"http://127.0.0.1:{free_port()}",
        "board_id": BOARD,
        "secret": SECRET,
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.1,
        "status_interval_s": 0.05,
        "heartbeat_interval_s": 0.05,
        "connect_timeout_s": 2.0,
        "rig_reconnect_max_s": 0.3,
        **changes,
    }
    return AgentConfig(**values)  # type: ignore[arg-type]  # validated on construction
