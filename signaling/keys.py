"""Typed keys of the aiohttp application's shared resources, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio
import socketio
from aiohttp import web

from media.sfu import Sfu
from signaling.audit import TxAudit
from signaling.auth import JwtAuthority
from signaling.config import ServerConfig
from signaling.ice import IcePlan
from signaling.metrics import ServerMetrics
from signaling.presence import PresenceTracker
from signaling.ratelimit import ApiLimits
from signaling.stations import StationService
from signaling.store import Store
from turn.probe import TurnHealth

CONFIG = web.AppKey("config", ServerConfig)
STORE = web.AppKey("store", Store)
AUDIT = web.AppKey("audit", TxAudit)
PRESENCE = web.AppKey("presence", PresenceTracker)
SFU = web.AppKey("sfu", Sfu)
ICE = web.AppKey("ice", IcePlan)
AUTHORITY = web.AppKey("authority", JwtAuthority)
STATIONS = web.AppKey("stations", StationService)
SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)
TURN_HEALTH = web.AppKey("turn_health", TurnHealth)
LIMITS = web.AppKey("limits", ApiLimits)
#: The metrics registry and what it reads (`signaling.metrics`).
METRICS = web.AppKey("metrics", ServerMetrics)
#: The Redis client of the shared rate limits; absent without `redis_url` (`GET /ready` pings it).
REDIS = web.AppKey("redis", redis.asyncio.Redis)
#: What workers and other nodes tell this node of the operators it passed on to them
#: (`POST /api/internal/node/event`).
NODE_EVENTS: web.AppKey[Callable[[dict[str, Any]], None]] = web.AppKey("node_events")
