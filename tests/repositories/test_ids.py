"""Which rows get time-ordered ids: audit logs and inference requests, when no id is given."""

from __future__ import annotations

import uuid

from llmcp.audit_writer import AuditWriter
from llmcp.config import DatabaseConfig
from llmcp.factory import RepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog
from tests.repositories.helpers import make_log, make_org, make_request, make_tenant


def test_append_heavy_rows_get_time_ordered_ids_and_the_rest_random_ones(
    shared_config: DatabaseConfig,
) -> None:
    with RepositoryFactory.connect(shared_config) as factory:
        repos = factory.repositories()
        tenant = make_tenant(repos)
        assert {tenant.org.id.version, tenant.app.id.version, tenant.user.id.version} == {4}
        logs = [make_log(repos, tenant.org.id) for _ in range(3)]
        requests = [make_request(repos, tenant.org.id, tenant.app.id) for _ in range(3)]
        for made in (logs, requests):
            assert [row.id.version for row in made] == [7, 7, 7]
            assert [row.id for row in made] == sorted(row.id for row in made)
        given = uuid.uuid4()  # an id the caller gives is kept as it is
        assert make_log(repos, tenant.org.id, id=given).id == given

        writer = AuditWriter(factory.database)
        org = make_org(repos)
        written = [
            writer.submit(
                NewAuditLog(org_id=org.id, action=AuditAction.POLICY_CREATED, resource_type="x")
            )
            for _ in range(3)
        ]
        writer.close()
        assert [v.version for v in written] == [7, 7, 7]
        assert {row.id for row in repos.audit_logs.get_by_org_id(org.id)} == set(written)
