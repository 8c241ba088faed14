"""What every insights figure means: one place, read by the "?" popovers and the definitions page."""

from __future__ import annotations


def _text(*parts: str) -> str:
    return " ".join(parts)


# anchor -> (title, one-line definition for the popover, the longer rule for the definitions page)
DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "billed-this-month": (
        "Billed this month",
        "Totals of invoices issued since the 1st of this month (issued, sent or paid; drafts and void excluded).",
        _text(
            "Per currency, the total (after discounts and tax) of every invoice whose issue date falls in the current",
            "calendar month of the workspace's time zone. Drafts are not billed yet; void invoices were cancelled by a",
            "credit note.",
        ),
    ),
    "due-next-month": (
        "Billing forecast, next month",
        "What billing expects to invoice next calendar month (net of discounts) — not money customers owe yet.",
        _text(
            "Month 1 of the forecast. See “Forecast” for what is included; the amount is net of discounts, and the gross",
            "and discount effect are shown beside it. Receivables (invoices issued and not yet paid) are under",
            "Collections; this figure is what will be invoiced, not what is due to be paid.",
        ),
    ),
    "forecast": (
        "Forecast",
        "Invoices expected in each coming month, by the day billing will issue them.",
        _text(
            "Recurring lines from the schedule (in advance on the period start, in arrears the day after it ends; partial",
            "periods prorated by days; amendments and custom rates as scheduled). Milestones pending on their expected",
            "date. Fixed fees on their bill-on date. Time & materials and usage at their run rate: the average invoiced",
            "amount of the last three closed periods, with a usage minimum commitment as a floor. Auto-renewing contracts",
            "without a churn decision (and contracts whose renewal is being negotiated) continue into the next term with",
            "the renewal uplift; nothing is forecast after the end of a churned or churning contract or one that does not",
            "renew. Discounts are applied per expected invoice with their window and cycles, so a discount ending shows",
            "as the discount effect stopping. Drafts are excluded; obligations already invoiced are not forecast again.",
        ),
    ),
    "run-rate": (
        "Run rate",
        "Average invoiced amount of a line's last three closed periods.",
        _text(
            "For time & materials and usage lines: the invoiced amounts of the last three periods that ended before today,",
            "divided by the number of those periods (fewer than three for a young contract; a closed period with no",
            "invoice counts as zero). Partial periods are prorated by days.",
        ),
    ),
    "discount-effect": (
        "Discount effect",
        "What discounts take off the expected invoices (gross − net).",
        _text(
            "Each expected invoice is run through the same discount rules as billing (line, contract and customer",
            "discounts, their windows, straddling periods prorated, max cycles used in date order).",
        ),
    ),
    "committed-value": (
        "Committed value",
        "What the contract commits over its term: recurring periods, minimum commitments, fixed fees, milestones.",
        _text(
            "Every recurring period and usage minimum commitment priced as billing prices it, plus one-off fees and",
            "milestones once. Time and usage beyond the minimums are not committed. Open-ended contracts are valued over",
            "their first twelve months.",
        ),
    ),
    "contract-value": (
        "Contract value",
        "Committed value plus the time and usage already delivered beyond it.",
        _text(
            "Variable money becomes part of a contract's value once it is delivered, so value = committed + time",
            "delivered + usage delivered above the minimum commitments.",
        ),
    ),
    "recognized": (
        "Recognized",
        "Earned to date: recurring straight-line by day, milestones on delivery, time and usage as delivered.",
        _text(
            "Recurring lines and usage minimum commitments earn day by day (each period counts the days from its start",
            "to today over its full length). Fixed fees are earned on their bill-on date, milestones when delivered.",
            "Time is billable hours × the rate card of the line (held under its not-to-exceed cap); usage is what",
            "billing priced at contract rates for closed periods.",
        ),
    ),
    "billed": (
        "Billed",
        "Issued invoice totals of the contract, less credit notes.",
        "Invoices issued, sent or paid (drafts and void excluded), total after discounts, less the credit notes against them.",
    ),
    "unearned-value": (
        "Backlog",
        "Contract value not yet recognized: value − recognized, never below zero.",
        _text(
            "Summed per currency over active contracts: the revenue the signed contracts still hold, billed or not.",
            "It is not deferred revenue (see below), which counts only what was already invoiced.",
        ),
    ),
    "deferred-revenue": (
        "Deferred revenue",
        "Billed but not yet recognized: billed − recognized, per contract, never below zero.",
        _text(
            "Invoices issued ahead of the service (a retainer billed in advance, a fee billed before the work) are a",
            "liability until earned. Summed per currency over the contracts where billing is ahead of recognition.",
        ),
    ),
    "unbilled-receivable": (
        "Unbilled receivable",
        "Earned but not invoiced: recognized − billed − discounts granted, never below zero.",
        _text(
            "A discount is revenue given up, not revenue still to bill, so discounts granted on issued invoices count as",
            "billed. A contract billed in advance shows zero here.",
        ),
    ),
    "at-risk": (
        "Revenue at risk this quarter",
        "Undecided renewals, contracts ending without renewing, and overdue receivables, to the quarter's end.",
        _text(
            "Three disjoint groups. Renewals without a decision: open or snoozed renewal alerts for terms ending by the",
            "end of this quarter, at their value at stake (a year of recurring value, or the term's value for a",
            "contract with nothing recurring). Contracts ending: active contracts ending by the",
            "quarter's end that will not renew by themselves (no auto-renew, or a churn decision) and are not already an",
            "open renewal or being renewed, at the annual recurring value of the terms in force. Overdue receivables:",
            "issued or sent invoices past their due date, at the amount still due.",
        ),
    ),
    "leakage-found": (
        "Earned, not billed",
        "Money delivered or due under the contracts that no invoice bills: open findings of L1–L4, L6, L7, L9, L10.",
        _text(
            "The leakage scanner's open and acknowledged findings of the rules that find revenue earned and not",
            "billed (milestones, time, usage, discounts outside their window, under-priced lines, work after a fixed",
            "fee, minimum commitments, recurring periods), summed per currency. Exposure (L5, L8) is shown apart and",
            "never added to it: it is value at stake, not money owed.",
        ),
    ),
    "leakage-exposure": (
        "Exposure",
        "Value at stake, not money owed: contracts past their notice deadline with no decision (L5), invoices with wrong terms (L8).",
        _text(
            "L5 counts the annual recurring value of a contract inside its notice period with no renewal decision (the",
            "same contracts appear under Revenue at risk); L8 counts the open total of invoices whose payment terms, PO",
            "or issuing entity differ from the contract. Summed per currency, never added to “Earned, not billed”.",
        ),
    ),
    "review-tasks": (
        "Review tasks",
        "Billing review tasks still open.",
        "Raised by scope changes, budget overruns, failed pre-send checks, usage corrections and leakage findings.",
    ),
}
