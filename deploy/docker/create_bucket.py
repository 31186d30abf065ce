"""Create the ``S3_BUCKET`` on ``S3_ENDPOINT`` unless it exists: the ``s3-init`` step of
docker-compose.yml. Waits up to a minute for the server to answer.

Usage: python /app/deploy/docker/create_bucket.py
"""

from __future__ import annotations

import sys
import time

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.common.settings import Settings


def main() -> int:
    s = Settings()
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=s.s3_endpoint or None,
        region_name=s.s3_region,
        aws_access_key_id=s.s3_access_key.get_secret_value(),
        aws_secret_access_key=s.s3_secret_key.get_secret_value(),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            break
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                print(f"S3 at {s.s3_endpoint} does not answer: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)
    if s.s3_bucket in have:
        print(f"bucket {s.s3_bucket} is there")
    else:
        client.create_bucket(Bucket=s.s3_bucket)
        print(f"created bucket {s.s3_bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
