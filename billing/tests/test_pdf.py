"""Invoice PDFs: real WeasyPrint output, read back with pypdf (and saved for people to look at)."""

from __future__ import annotations

import io
import os
import re
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.files.storage import default_storage

from billing.models import Invoice
from billing.services.pdf import invoice_pdf_bytes, invoice_pdf_name, invoice_pdf_render, invoice_pdf_store
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Platform retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}


@pytest.fixture(autouse=True)
def now_in_march():
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        yield


def pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def save_for_review(artifacts_dir: str, name: str, data: bytes) -> str:
    """Keep the PDF and its pages as PNGs (pdftoppm) under test-artifacts/ for a person to look at."""
    import glob

    for old in glob.glob(os.path.join(artifacts_dir, f"{name}-*.png")):
        os.remove(old)
    path = os.path.join(artifacts_dir, f"{name}.pdf")
    with open(path, "wb") as handle:
        handle.write(data)
    subprocess.run(["pdftoppm", "-png", "-r", "80", path, os.path.join(artifacts_dir, name)], check=False, timeout=60)
    return path


def issued(*lines, as_of=date(2026, 3, 1), **kwargs) -> Invoice:
    contract = contract_with(*lines, start=date(2026, 1, 1), **kwargs)
    invoices = contract_bill_due(contract_id=contract.pk, as_of=as_of).invoices
    assert len(invoices) == 1 and invoices[0].status == "issued", [i.hold_reasons for i in invoices]
    return Invoice.objects.select_related("customer", "contract", "issuing_entity").get(pk=invoices[0].pk)


def sixty_line_invoice() -> Invoice:
    fees = [
        {
            "kind": "fixed_fee",
            "description": f"Deliverable {n:02d}: workshop, design review and written recommendations for workstream {n}",
            "amount": D("1250.00") + n,
            "bill_on": date(2026, 3, 1),
        }
        for n in range(1, 61)
    ]
    return issued(*fees, po_number="PO-60-LINES", po_required=True)


def test_the_pdf_names_the_number_po_due_date_and_total(in_tenant_a, artifacts_dir):
    invoice = issued(RETAINER, po_number="PO-7781", po_required=True, payment_terms_days=30)
    data = invoice_pdf_render(invoice=invoice)
    save_for_review(artifacts_dir, "invoice-one-page", data)
    (text,) = pdf_pages(data)
    assert invoice.number in text
    assert "PO-7781" in text
    assert "31 Mar 2026" in text  # issued 1 March, net 30
    assert "9,300.00 USD" in text  # Jan + Feb (catch-up) + Mar at 3,100.00
    assert "Platform retainer" in text and "Net 30 days" in text
    assert invoice.customer.legal_name in text and invoice.issuing_entity.legal_name in text
    assert "IBAN GB33BUKB20201555555555" in text  # how to pay
    assert "Page 1" not in text  # one page has nothing to number; a long invoice does (below)


def test_included_hours_print_as_a_person_writes_them():
    from types import SimpleNamespace

    from billing.services.pdf import _source_note

    line = SimpleNamespace(
        kind="recurring",
        description="Support retainer overage",
        source={"time_entries": 5, "hours_used": "34.000000", "included_hours": "20.50"},
    )
    assert _source_note(line) == "5 time entries · 34 h used, 20.5 h included"


def test_a_sixty_line_invoice_runs_over_pages_with_the_header_repeated(in_tenant_a, artifacts_dir):
    invoice = sixty_line_invoice()
    assert invoice.lines.count() == 60
    data = invoice_pdf_render(invoice=invoice)
    save_for_review(artifacts_dir, "invoice-sixty-lines", data)
    pages = pdf_pages(data)
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
    for text in pages[1:]:
        if "Deliverable" in text:  # every page that continues the table repeats its header
            assert "DESCRIPTION" in text and "UNIT PRICE" in text and "AMOUNT (USD)" in text
        assert f"Invoice {invoice.number}" in text  # running header names the invoice
    everything = "\n".join(pages)
    assert all(f"Deliverable {n:02d}" in everything for n in range(1, 61))
    # Too long for one page: the totals and how to pay are on page 1 all the same, lines follow.
    first = pages[0]
    assert "PO-60-LINES" in first and "Amount due" in first and "How to pay" in first
    assert "IBAN GB33BUKB20201555555555" in first and "Total" in first
    assert first.index("How to pay") < first.index("Detail of charges")


@pytest.mark.parametrize(
    "currency, amount, shown", [("JPY", D("310000"), "930,000 JPY"), ("KWD", D("950.125"), "2,850.375 KWD")]
)
def test_currencies_with_zero_and_three_decimals_print_their_own_minor_units(
    in_tenant_a, artifacts_dir, currency, amount, shown
):
    invoice = issued({**RETAINER, "amount": amount}, currency=currency)
    data = invoice_pdf_render(invoice=invoice)
    save_for_review(artifacts_dir, f"invoice-{currency.lower()}", data)
    (text,) = pdf_pages(data)
    assert shown in text
    if currency == "JPY":
        assert not re.search(r"310,000\.\d", text)  # no decimals for yen
    else:
        assert "950.125" in text


def test_a_draft_renders_with_a_draft_mark_and_is_never_stored(in_tenant_a):
    contract = contract_with(RETAINER, start=date(2026, 3, 1), auto_issue=False)
    (draft,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    text = "\n".join(pdf_pages(invoice_pdf_bytes(invoice=draft)))
    assert "DRAFT" in text and "NOT VALID FOR PAYMENT" in text
    with pytest.raises(ValueError, match="Drafts"):
        invoice_pdf_store(invoice=draft)


def test_an_issued_pdf_is_stored_once_in_the_tenants_own_folder(in_tenant_a, media_root):
    invoice = issued(RETAINER)
    name = invoice_pdf_store(invoice=invoice)
    assert name == invoice_pdf_name(invoice) and name.endswith(f"{invoice.number}.pdf")
    path = default_storage.path(name)
    assert path.startswith(str(media_root / in_tenant_a.schema))
    mtime = os.path.getmtime(path)
    assert invoice_pdf_store(invoice=invoice) == name  # not rendered again
    assert os.path.getmtime(path) == mtime
    assert invoice_pdf_bytes(invoice=invoice).startswith(b"%PDF")


def test_discounts_and_credits_show_on_the_pdf(in_tenant_a):
    from billing.services.adjustments import invoice_adjustments_apply
    from discounts.models import Credit, Discount

    contract = contract_with(RETAINER, start=date(2026, 3, 1), auto_issue=False)
    Discount.objects.create(
        kind="percentage",
        value=D("10"),
        scope="contract",
        customer=contract.customer,
        contract=contract,
        start_date=date(2026, 3, 1),
        end_date=date(2026, 5, 31),
        status="active",
        reason="Launch",
    )
    Credit.objects.create(
        customer=contract.customer,
        amount=D("100.00"),
        balance=D("100.00"),
        currency="USD",
        expires_on=date(2026, 12, 31),
        reason="SLA credit",
    )
    (draft,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    invoice_adjustments_apply(invoice=draft, lines=list(draft.lines.all()))
    from billing.services.invoicing import invoice_approve

    result = invoice_approve(invoice_id=draft.pk, issue_date=date(2026, 3, 1))
    assert result.issued, result.problems
    invoice = Invoice.objects.get(pk=draft.pk)
    (text,) = pdf_pages(invoice_pdf_render(invoice=invoice))
    assert "10 % off" in text and "−310.00" in text
    assert "applied" in text and "−100.00" in text
    assert "2,690.00 USD" in text  # 3,100 − 310 − 100


def test_a_short_invoice_keeps_lines_totals_and_payment_on_one_page_in_reading_order(in_tenant_a):
    invoice = issued(*[{**RETAINER, "description": f"Retainer {n}", "line_ref": f"R{n}"} for n in range(4)])
    (text,) = pdf_pages(invoice_pdf_render(invoice=invoice))
    assert text.index("Retainer 3") < text.index("Subtotal") < text.index("Amount due")
    # Floats are painted before the rest of the page, so only the title floats (it reads first anyway):
    # who issues, who pays and the dates still come before the lines.
    assert text.index(invoice.number) < text.index(invoice.issuing_entity.legal_name) < text.index("BILL TO")
    assert text.index("BILL TO") < text.index("DUE DATE") < text.index("Retainer 0")
    assert "How to pay" in text and "Detail of charges" not in text


def test_addresses_print_in_their_countrys_format_and_domestic_ones_without_the_country(in_tenant_a):
    from contracts.tests.factories import CustomerFactory, IssuingEntityFactory

    entity = IssuingEntityFactory(
        address_line1="250 Greenwich Street", city="New York", region="NY", postal_code="10007", country="US"
    )
    us = CustomerFactory(
        legal_name="Northshore Bank N.A.",
        address_line1="55 Water St",
        city="New York",
        region="NY",
        postal_code="10041",
        country="US",
    )
    de = CustomerFactory(address_line1="Am Sandtorkai 41", city="Hamburg", postal_code="20457", country="DE")
    text_us = pdf_pages(invoice_pdf_render(invoice=issued(RETAINER, issuing_entity=entity, customer=us)))[0]
    assert "250 Greenwich Street, New York, NY 10007, United States" in text_us  # the issuer, one line
    assert "New York, NY 10041" in text_us and "10041 New York" not in text_us
    assert "\nUS\n" not in text_us and "\nNY\n" not in text_us
    customer_block = text_us.split("BILL TO", 1)[1].split("ISSUE DATE", 1)[0]
    assert "United States" not in customer_block  # domestic: no country line
    text_de = pdf_pages(invoice_pdf_render(invoice=issued(RETAINER, issuing_entity=entity, customer=de)))[0]
    assert "20457 Hamburg" in text_de and "Germany" in text_de


def test_the_for_block_names_the_contract_and_service_period_not_the_workspace(in_tenant_a):
    invoice = issued(RETAINER, po_number="PO-7781", po_required=True)
    (text,) = pdf_pages(invoice_pdf_render(invoice=invoice))
    block = text.split("FOR", 1)[1].split("ISSUE DATE", 1)[0]
    assert "Platform services" in block and f"Contract {invoice.contract.number}" in block
    assert "your PO PO-7781" in block and "Service period 1 Jan – 31 Mar 2026" in block
    assert "Tenant-A Corp" not in text  # the workspace's name is ours, not the client's business


def test_proration_is_printed_once(in_tenant_a):
    contract = contract_with(RETAINER, start=date(2026, 3, 15))
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 15)).invoices
    (text,) = pdf_pages(invoice_pdf_render(invoice=invoice))
    text = " ".join(text.split())
    assert text.count("prorated") == 1 and "17/31 days" in text


def test_a_minimum_commitment_top_up_names_its_amount_formatted(in_tenant_a):
    usage = {
        "kind": "usage",
        "description": "API calls",
        "metric": "api_calls",
        "frequency": "monthly",
        "charge_model": "per_unit",
        "unit_amount": D("0.01"),
        "minimum_commitment": D("1400.00"),
    }
    invoice = issued(usage, as_of=date(2026, 2, 1))
    text = "\n".join(pdf_pages(invoice_pdf_render(invoice=invoice)))
    text = " ".join(text.split())
    assert "top-up to 1,400.00 USD" in text and "1400.00" not in text


def test_a_void_invoice_prints_void_and_nothing_due(in_tenant_a):
    invoice = issued(RETAINER)
    Invoice.objects.filter(pk=invoice.pk).update(status="void")  # as a full credit note leaves it
    invoice.refresh_from_db()
    (text,) = pdf_pages(invoice_pdf_render(invoice=invoice))
    assert "VOID" in text and "Nothing is due" in text
    assert "Please pay" not in text and "0.00 USD" in text


def test_the_tenants_logo_and_accent_colour_print_on_the_invoice(in_tenant_a, media_root, artifacts_dir):
    from PIL import Image

    from billing.services.pdf import invoice_pdf_context
    from revexos.tenancy.models import Tenant

    tenant = Tenant.objects.get(schema_name=in_tenant_a.schema)
    buffer = io.BytesIO()
    Image.new("RGB", (240, 60), (13, 148, 136)).save(buffer, format="PNG")
    from django.core.files.base import ContentFile

    tenant.invoice_logo.save("logo.png", ContentFile(buffer.getvalue()), save=False)
    tenant.invoice_accent_color = "#0d9488"
    tenant.save()
    invoice = issued(RETAINER)
    context = invoice_pdf_context(invoice=invoice)
    assert context["accent"] == "#0d9488" and context["logo_uri"].startswith("data:image/png;base64,")
    data = invoice_pdf_render(invoice=invoice)
    save_for_review(artifacts_dir, "invoice-branded", data)
    from pypdf import PdfReader

    (page,) = PdfReader(io.BytesIO(data)).pages
    assert list(page.images)  # the logo is embedded
    png = os.path.join(artifacts_dir, "invoice-branded-1.png")
    with Image.open(png) as picture:  # the accent rule at the top is drawn in the tenant's colour
        colours = {picture.getpixel((x, y))[:3] for x in range(60, 400, 40) for y in range(30, 70)}
    assert any(abs(r - 13) + abs(g - 148) + abs(b - 136) < 30 for r, g, b in colours)


def test_a_capped_time_invoice_prints_full_rate_lines_and_the_cap_as_its_own_line(in_tenant_a):
    from billing.tests.builders import hours

    tm = {
        "kind": "time_and_materials",
        "description": "Extra engineering",
        "amount": None,
        "frequency": "",
        "timing": "",
        "cap": D("1000.00"),
        "line_ref": "TM",
        "rates": [("engineer", "150.00"), ("designer", "100.00")],
    }
    contract = contract_with(tm, start=date(2026, 1, 1))
    hours(contract, "5", date(2026, 2, 10), line_ref="TM")  # 750.00
    hours(contract, "5", date(2026, 2, 11), role="designer", line_ref="TM")  # 500.00, 250.00 over the cap
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    assert invoice.subtotal == D("1000.00")
    text = " ".join(" ".join(pdf_pages(invoice_pdf_render(invoice=invoice))).split())
    assert "5 150.00 750.00" in text and "5 100.00 500.00" in text  # hours × rate = amount
    assert "Not-to-exceed cap" in text and "−250.00" in text
    assert "capped at the not-to-exceed amount" not in text
    assert "1,000.00 USD" in text


def test_the_invoice_markup_parses_to_the_same_tree_with_the_fast_parser(in_tenant_a):
    """revexos.pdf reads well-formed XHTML with the standard library's XML parser rather than
    WeasyPrint's HTML5 parser: the invoice's markup must stay well-formed (void elements closed,
    tables with their tbody) and give the tree the HTML5 parser would, in every layout."""
    import tinyhtml5
    from django.template.loader import render_to_string

    from billing.services.pdf import invoice_pdf_context
    from revexos.pdf import STYLE_BLOCK, xhtml_tree

    def shape(element):
        return [(e.tag, sorted(e.attrib.items()), e.text or "", e.tail or "") for e in element.iter()]

    draft = contract_with(RETAINER, start=date(2026, 3, 1), auto_issue=False)
    (draft,) = contract_bill_due(contract_id=draft.pk, as_of=date(2026, 3, 1)).invoices
    for invoice in (issued(RETAINER, po_number="PO-1", po_required=True), draft):
        for summary_first in (False, True):
            context = {**invoice_pdf_context(invoice=invoice), "summary_first": summary_first}
            html = STYLE_BLOCK.sub("", render_to_string("billing/pdf/invoice.html", context))
            fast = xhtml_tree(html)
            assert fast is not None, "the invoice markup is no longer well-formed XHTML"
            assert shape(fast) == shape(tinyhtml5.parse(html, namespace_html_elements=False))
