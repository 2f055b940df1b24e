"""TLS material for the Redis client: inline PEM and ``file://`` paths (no server needed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from dataqueue.backends.redis.config import RedisSettings

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_redis_inline_cert_goes_to_a_private_file_and_file_urls_stay_paths(
    tmp_path: Path,
) -> None:
    key = tmp_path / "client.key"
    s = RedisSettings.from_options(
        redis_config={"host": "example.invalid", "tls": {"cert": CERT, "key": f"file://{key}"}}
    )
    kwargs = s.build_sync_client().connection_pool.connection_kwargs
    assert kwargs["ssl_keyfile"] == str(key)
    cert_file = Path(kwargs["ssl_certfile"])
    assert cert_file.read_text() == CERT
    assert stat.S_IMODE(cert_file.stat().st_mode) == 0o600


def test_redis_inline_pem_files_are_removed_when_the_process_exits() -> None:
    code = (
        "from dataqueue.backends.redis.config import RedisSettings\n"
        f"s = RedisSettings.from_options(redis_config={{'tls': {{'cert': {CERT!r}}}}})\n"
        "print(s.build_sync_client().connection_pool.connection_kwargs['ssl_certfile'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    path = out.stdout.strip()
    assert path.endswith(".pem")
    assert not os.path.exists(path)
