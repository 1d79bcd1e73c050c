"""Pusher with the atomic, de-duplicating executor (same spec and outputs as TFX's Pusher)."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class Pusher(tfx.components.Pusher):
    """TFX Pusher whose filesystem pushes appear whole and never repeat the served model."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
