"""A request's audit trail: ``audit_logs.get_by_request_id`` against the reference model.

Logs of two organizations share a few request ids and many equal ``created_at``;
the trail of a request in an organization is every log of that organization that
names it, oldest first with the id as the tie-breaker, and nothing else: a request
id is the caller's, unique per organization, and another organization's entries
with the same request id never show (issue 12).
"""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from llmcp.factory import RepositoryFactory
from llmcp.inputs import NewAuditLog
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties import model
from tests.properties.budget import examples


@examples(25)
@given(data=st.data())
def test_a_requests_audit_trail_is_every_log_of_it_in_its_organization_oldest_first(
    llmcp_factory: RepositoryFactory, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        orgs = [
            repos.organizations.create(new)
            for new in data.draw(st.lists(lst.new_organizations(lean=True), min_size=2, max_size=2))
        ]
        requests = [f"req-{data.draw(lst.unique_tokens(), label='request')}" for _ in range(3)]
        news: list[NewAuditLog] = data.draw(
            st.lists(
                lst.new_audit_logs(
                    st.sampled_from([org.id for org in orgs]),
                    lean=True,
                    created_at=lst.clustered_datetimes(3),
                ).flatmap(
                    lambda new: st.sampled_from([*requests, None]).map(
                        lambda request: _with_request(new, request)
                    )
                ),
                max_size=12,
            ),
            label="logs",
        )
        stored = [repos.audit_logs.insert(new) for new in news]
        for org in orgs:
            for request in requests:
                expected = model.request_trail(stored, org.id, request)
                assert repos.audit_logs.get_by_request_id(org.id, request) == expected


def _with_request(new: NewAuditLog, request: str | None) -> NewAuditLog:
    return msgspec.structs.replace(new, request_id=request)
