"""The MongoDB client's limits come from the settings (no I/O: the client connects lazily)."""

from __future__ import annotations

from services.common.mongo import connect
from services.common.settings import Settings


async def test_every_wait_of_the_client_is_bounded_by_a_setting() -> None:
    settings = Settings.model_validate(
        {"MONGO_URL": "mongodb://127.0.0.1:1", "MONGO_TIMEOUT_MS": 1500,
         "MONGO_SOCKET_TIMEOUT_MS": 2500}
    )  # fmt: skip
    client = connect(settings, "limits-test")
    try:
        pool = client.options.pool_options
        assert client.options.server_selection_timeout == 1.5
        assert pool.connect_timeout == 1.5
        assert pool.socket_timeout == 2.5
    finally:
        await client.close()
