"""E-mails: the owner hears when an alert is raised, escalated or auto-renewed; a daily digest."""

from __future__ import annotations

from datetime import date

import pytest
from django.core import mail

from renewals.models import RenewalDigestSent
from renewals.services.alerts import renewal_alerts_escalate_due, renewal_alerts_raise_due
from renewals.services.decisions import renewal_decide
from renewals.services.notify import renewal_digest_send
from renewals.services.terms import contract_auto_renew_due
from renewals.tests.helpers import contract_make, user_make
from revexos.accounts.models import Role

pytestmark = pytest.mark.django_db


def test_the_owner_gets_one_email_listing_the_alerts_raised_for_them(am, other_am, django_capture_on_commit_callbacks):
    a = contract_make(owner=am, end=date(2026, 12, 31), monthly="3100.00")
    b = contract_make(owner=am, end=date(2026, 12, 20))
    c = contract_make(owner=other_am, end=date(2026, 12, 20))
    with django_capture_on_commit_callbacks(execute=True):
        renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    assert len(mail.outbox) == 2
    mine = next(m for m in mail.outbox if m.to == [am.email])
    assert mine.subject.startswith("2 contracts up for renewal")
    assert a.number in mine.body and b.number in mine.body and c.number not in mine.body
    assert "37,200.00 USD" in mine.body and "/renewals/" in mine.body


def test_nothing_is_sent_when_the_transaction_rolls_back(am):
    contract_make(owner=am, end=date(2026, 12, 31))
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))  # the test transaction never commits
    assert mail.outbox == []


def test_escalation_goes_to_the_owner_with_admins_in_copy(am, django_capture_on_commit_callbacks):
    admin = user_make(role=Role.ADMIN)
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    with django_capture_on_commit_callbacks(execute=True):
        renewal_alerts_escalate_due(as_of=date(2026, 11, 24))
    (message,) = mail.outbox
    assert message.to == [am.email] and admin.email in message.cc
    assert "Action needed" in message.subject and contract.number in message.body and "1 Dec 2026" in message.body


def test_the_owner_is_told_of_an_auto_renewal(am, django_capture_on_commit_callbacks):
    contract = contract_make(owner=am, end=date(2026, 12, 31), uplift="5")
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    with django_capture_on_commit_callbacks(execute=True):
        contract_auto_renew_due(as_of=date(2026, 12, 31))
    (message,) = mail.outbox
    assert message.subject == f"{contract.number} auto-renewed to 31 Dec 2027"
    assert "1 Jan 2027 – 31 Dec 2027 (12 months)" in message.body and "uplift: 5 %" in message.body


def test_the_daily_digest_lists_each_managers_open_alerts_once_a_day(am, other_am):
    urgent = contract_make(owner=am, end=date(2026, 12, 10), notice_days=30)
    later = contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    decided = contract_make(owner=am, end=date(2026, 12, 20))
    theirs = contract_make(owner=other_am, end=date(2026, 12, 31))
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    renewal_decide(
        alert=decided.renewal_alerts.get(), decision="renewed", note="Signed", user=am, today=date(2026, 11, 2)
    )
    renewal_alerts_escalate_due(as_of=date(2026, 11, 3))  # the urgent one: deadline 10 Nov

    sent = renewal_digest_send(as_of=date(2026, 11, 3))
    assert sorted(sent) == sorted([am.pk, other_am.pk])
    mine = next(m for m in mail.outbox if m.to == [am.email])
    assert mine.subject == "Your renewals: 2 open, 1 escalated — 3 Nov 2026"
    assert mine.body.index(urgent.number) < mine.body.index(later.number)
    assert decided.number not in mine.body and theirs.number not in mine.body and "ESCALATED" in mine.body

    assert renewal_digest_send(as_of=date(2026, 11, 3)) == []  # twice a day: nothing more
    assert len(mail.outbox) == 2
    assert RenewalDigestSent.objects.filter(sent_on=date(2026, 11, 3)).count() == 2
    assert len(renewal_digest_send(as_of=date(2026, 11, 4))) == 2


def test_no_digest_for_a_manager_with_nothing_open(am):
    assert renewal_digest_send(as_of=date(2026, 11, 3)) == []
    assert mail.outbox == []
