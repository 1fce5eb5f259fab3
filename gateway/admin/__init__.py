"""The operator's side of a running gateway: the admin API (``/admin/api/v1``) and the web console (``/admin/``).

Both sit on one set of operations (``actions.py``) over the store, so a retry from the console and a retry
from a script are the same transaction with the same audit entry; ``auth.py`` decides who may do what.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway.runtime import Gateway

__all__ = ["install_admin"]


def install_admin(app: FastAPI, gateway: Gateway) -> None:
    """Mount the admin API and the console on ``app`` (the gateway's one HTTP server)."""
    from gateway.admin.actions import Operations
    from gateway.admin.api import admin_api, install_error_handlers
    from gateway.admin.auth import Authenticator
    from gateway.admin.console import Console

    ops = Operations(gateway)
    auth = Authenticator(gateway.config.admin)
    if not auth.enabled:
        import structlog

        structlog.get_logger("shenguan.admin").info(
            "admin.no_users", hint="the admin API and console refuse everyone until [admin.users.NAME] is configured"
        )
    install_error_handlers(app)
    app.include_router(admin_api(ops, auth))
    Console(ops, auth, gateway.config.admin).install(app)
