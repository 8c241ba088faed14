"""Bank statement import (CSV, CAMT.053, MT940): matching by invoice number, then by exact amount
and payer; one malformed line imports nothing and is named; re-importing changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from receivables.models import BankStatement, BankStatementLine, Payment
from receivables.services.bank_import import ImportRefused, bank_line_match, statement_commit, statement_preview
from receivables.tests.helpers import customer, issued_invoice, reload

pytestmark = pytest.mark.usefixtures("in_tenant_a")
D = Decimal


@pytest.fixture
def book():
    bluepeak = customer("GBP", legal_name="Bluepeak Analytics Ltd", external_id="bluepeak")
    cobalt = customer("GBP", legal_name="Cobalt Freight GmbH", external_id="cobalt")
    a = issued_invoice(bluepeak, "1500.00", issued=date(2026, 2, 1))
    b = issued_invoice(cobalt, "640.00", issued=date(2026, 2, 3))
    return bluepeak, cobalt, a, b


def csv_statement(a, *, bad: str = "") -> bytes:
    rows = [
        "date,amount,currency,reference,payer",
        f"2026-03-10,1500.00,GBP,Payment {a.number} thanks,BLUEPEAK ANALYTICS",
        "2026-03-11,640.00,GBP,March services,Cobalt Freight",
        "2026-03-12,99.00,GBP,unknown transfer,Someone Else",
        "2026-03-12,-250.00,GBP,Office rent,Landlord",
    ]
    if bad:
        rows.insert(3, bad)
    return ("\n".join(rows) + "\n").encode()


def test_a_csv_statement_matches_by_invoice_number_then_amount_and_payer_and_queues_the_rest(book):
    bluepeak, cobalt, a, b = book
    data = csv_statement(a)
    preview = statement_preview(data=data, filename="march.csv")
    assert preview.ok and preview.format == "csv" and preview.skipped_debits == 1
    assert [(line.customer, line.reason) for line in preview.lines][:2] == [
        (bluepeak, f"invoice number {a.number} in the reference"),
        (cobalt, "exact open amount and payer name"),
    ]
    statement, _ = statement_commit(data=data, filename="march.csv")
    assert reload(a).status == "paid" and reload(b).status == "paid"
    assert reload(a).paid_on == date(2026, 3, 10)
    assert BankStatementLine.objects.filter(statement=statement, status="queued").count() == 1

    again, preview = statement_commit(data=data, filename="march.csv")
    assert again is None and all(line.duplicate for line in preview.lines)
    assert BankStatement.objects.count() == 1 and Payment.objects.filter(source="bank_statement").count() == 2


def test_one_malformed_line_imports_nothing_and_is_named(book):
    _b, _c, a, _i = book
    data = csv_statement(a, bad="2026-03-11,12,5O,GBP,typo,Somebody")
    with pytest.raises(ImportRefused) as exc:
        statement_commit(data=data, filename="march.csv")
    assert any(e.startswith("Line 4:") for e in exc.value.preview.errors), exc.value.preview.errors
    assert not BankStatement.objects.exists() and not Payment.objects.exists()
    assert reload(a).amount_paid == 0


def test_a_queued_line_is_matched_by_hand(book):
    _b, cobalt, a, _inv = book
    statement_commit(data=csv_statement(a), filename="march.csv")
    line = BankStatementLine.objects.get(status="queued")
    payment = bank_line_match(line_id=line.pk, customer=cobalt)
    assert payment.amount == D("99.00") and payment.unapplied == D("99.00")  # b was paid by line 2
    line.refresh_from_db()
    assert line.status == "matched"


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-2026-03</MsgId><CreDtTm>2026-03-31T18:00:00</CreDtTm></GrpHdr>
  <Stmt><Id>STMT-1</Id><CreDtTm>2026-03-31T18:00:00</CreDtTm>
   <Acct><Id><IBAN>GB29BARC20000043218765</IBAN></Id><Ccy>GBP</Ccy></Acct>
   <Ntry><Amt Ccy="GBP">1500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-03-10</Dt></BookgDt><ValDt><Dt>2026-03-10</Dt></ValDt>
    <NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs>
     <RltdPties><Dbtr><Nm>Bluepeak Analytics Ltd</Nm></Dbtr></RltdPties>
     <RmtInf><Ustrd>Invoice {number}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
   <Ntry><Amt Ccy="GBP">80.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-03-11</Dt></BookgDt></Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
"""

MT940 = """:20:STARTUMS
:25:GB29BARC20000043218765
:28C:00001/001
:60F:C260301GBP1000,00
:61:2603110311C640,00NTRFNONREF//BANKREF-2
:86:Invoice {number} Cobalt Freight
:61:2603120312D200,00NTRFNONREF//BANKREF-3
:86:Office rent
:62F:C260312GBP1440,00
-
"""


def test_camt053_and_mt940_statements_go_through_their_parsers(book):
    _b, _c, a, b = book
    _statement, preview = statement_commit(data=CAMT.format(number=a.number).encode(), filename="march.xml")
    assert preview.format == "camt053" and preview.skipped_debits == 1 and len(preview.matched) == 1
    assert reload(a).status == "paid"
    _statement, preview = statement_commit(data=MT940.format(number=b.number).encode(), filename="march.sta")
    assert preview.format == "mt940" and len(preview.matched) == 1 and preview.skipped_debits == 1
    assert reload(b).status == "paid"
    assert statement_commit(data=MT940.format(number=b.number).encode(), filename="march.sta")[0] is None


def test_a_broken_camt_file_is_refused_whole(book):
    with pytest.raises(ImportRefused) as exc:
        statement_commit(
            data=b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><broken", filename="x.xml"
        )
    assert exc.value.preview.errors and not BankStatement.objects.exists()
