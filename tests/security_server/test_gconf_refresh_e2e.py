"""Issue 22 item 1 end to end: a changed global configuration takes effect on both running servers within one
configuration refresh, without a restart.

The federation of tests/e2e_federation.py (the registry with its CA, OCSP responder and TSA; two security servers
built by ``make_service``; a SOAP provider). The registry lowers the OCSP freshness (3600 -> 60 s) and the
timestamping interval (60 -> 30 s) and publishes; each server downloads once. Both servers' OCSP clients then judge
and refresh by the new window (refetching within 30 s, not 1,800 s), both timestampers stamp at the new interval,
and an exchange still goes through: nothing was restarted.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.store import RegistryStore
from tests import e2e_federation as federation
from tests.e2e_federation import zeep_call


class GlobalConfRefreshEndToEndTest(federation.TwoDepartmentFederation):
    """Two running security servers follow a new global configuration after one download each."""

    @defer.inlineCallbacks
    def test_both_servers_follow_a_lowered_freshness_and_interval_without_restart(self) -> Any:
        """After one refresh both servers use freshness 60 s (refetch due within 30 s) and interval 30 s."""
        consumer, provider = yield self.start_pair()
        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result, _ = yield deferToThread(zeep_call, address, "gconf-before")
        assert result == "42"
        for department in (consumer, provider):
            ocsp = department.service.ocsp
            assert ocsp is not None and ocsp.refresh_seconds() == 1800
            assert department.service.evidence.timestamper.interval_seconds() == 60

        store = RegistryStore(self.paths.database)
        store.set_setting("ocsp_freshness_seconds", "60")
        store.set_setting("timestamping_interval_seconds", "30")
        store.close()
        yield self.registry.publish_now()
        for department in (consumer, provider):
            applied = yield department.service.conf_client.refresh()  # the one refresh; no restart, no restart_ocsp
            assert applied.applied, applied.error

        for department in (consumer, provider):
            ocsp = department.service.ocsp
            assert ocsp is not None
            assert ocsp.freshness_seconds() == 60
            assert ocsp.refresh_seconds() == 30
            for entry in department.service.token.list():
                if entry.cert is not None:
                    due = ocsp.next_refresh_in(entry.cert)
                    assert due is not None and due <= 30, due
            assert department.service.evidence.timestamper.interval_seconds() == 30
        result, _ = yield deferToThread(zeep_call, address, "gconf-after")
        assert result == "42"
