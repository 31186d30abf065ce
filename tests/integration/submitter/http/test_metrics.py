"""``/metrics`` on the API port, scraped: requests by route template and status, and jobs
by kind and status from MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common.job_store import JOBS
from services.common.mongo import database
from services.common.settings import Settings
from services.submitter.http import metrics as http_metrics
from tests.integration.submitter.kit import running_api


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


async def test_metrics_count_requests_by_route_and_jobs_by_status(settings: Settings) -> None:
    http_metrics._jobs_gauge.read_at = float("-inf")  # another test's read must not be reused
    async with running_api(settings) as api:
        db = database(api.runtime.mongo, api.settings)
        now = datetime.now(UTC)
        await db[JOBS].insert_many([
            {"_id": f"j{n}", "tenant_id": "acme", "kind": "production", "status": status,
             "created_at": now}
            for n, status in enumerate(["COMPLETED", "COMPLETED", "FAILED"])
        ])  # fmt: skip
        before = (await api.client.get("/metrics")).text
        route = "/v1/jobs/{job_id}"
        base = sample(before, "tapedeck_http_requests_total", method="GET", route=route,
                      status="401") or 0  # fmt: skip
        for job_id in ("a", "b", "c"):
            assert (await api.client.get(f"/v1/jobs/{job_id}")).status_code == 401
        await api.client.get("/no/such/path/../etc")

        resp = await api.client.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.text
        # Counted under the route's template, never the ids a caller sent.
        assert sample(text, "tapedeck_http_requests_total", method="GET", route=route,
                      status="401") == base + 3  # fmt: skip
        assert 'route="/v1/jobs/a"' not in text
        assert (sample(text, "tapedeck_http_requests_total", method="GET", route="unmatched",
                       status="404") or 0) >= 1  # fmt: skip
        assert (sample(text, "tapedeck_http_request_duration_seconds_count", method="GET",
                       route=route) or 0) >= 3  # fmt: skip
        assert sample(text, "tapedeck_jobs", kind="production", status="COMPLETED") == 2
        assert sample(text, "tapedeck_jobs", kind="production", status="FAILED") == 1
