"""Every change to what the projections read marks the customer dirty, whoever makes it.

Statement-level AFTER triggers with transition tables: one INSERT … SELECT DISTINCT per statement
(a billing chunk's bulk insert costs one), never one per row. A model save, a bulk_create, a
queryset update and raw SQL all pass through them, so no code path can change a contract, an invoice
or a fact without the dashboards learning of it. Tables are named through TG_TABLE_SCHEMA (the
tenant's schema), like contracts' tier trigger. Usage events are not watched: the projections read
usage only as billing priced it, on invoice lines.
"""

from django.db import migrations

# table -> SQL giving the customer ids of the rows in the transition table "changed" ({s}: schema).
SOURCES = {
    "contracts_contract": "SELECT x.customer_id FROM changed x",
    "contracts_contractversion": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
    "contracts_priceline": (
        "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contractversion v ON v.id = x.version_id"
        " JOIN {s}.contracts_contract c ON c.id = v.contract_id"
    ),
    "contracts_ratecardentry": (
        "SELECT c.customer_id FROM changed x JOIN {s}.contracts_priceline l ON l.id = x.price_line_id"
        " JOIN {s}.contracts_contractversion v ON v.id = l.version_id JOIN {s}.contracts_contract c ON c.id = v.contract_id"
    ),
    "contracts_milestone": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
    "discounts_discount": "SELECT x.customer_id FROM changed x",
    "discounts_priceoverride": "SELECT x.customer_id FROM changed x",
    "discounts_discountapplication": "SELECT d.customer_id FROM changed x JOIN {s}.discounts_discount d ON d.id = x.discount_id",
    "billing_invoice": "SELECT x.customer_id FROM changed x",
    "billing_invoiceline": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
    "billing_timeentry": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
    "billing_externalinvoice": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
    "renewals_renewalalert": "SELECT c.customer_id FROM changed x JOIN {s}.contracts_contract c ON c.id = x.contract_id",
}

# (trigger suffix, event, transition table): an update marks the customers before and after it.
EVENTS = (("ins", "INSERT", "NEW"), ("upd_new", "UPDATE", "NEW"), ("upd_old", "UPDATE", "OLD"), ("del", "DELETE", "OLD"))


def _create() -> str:
    sql = []
    for table, select in SOURCES.items():
        query = select.replace("{s}", "%1$I")
        sql.append(f"""
CREATE OR REPLACE FUNCTION {table}_projection_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO %1$I.insights_projectiondirty (customer_id)
         SELECT DISTINCT customer_id FROM ({query}) t WHERE customer_id IS NOT NULL',
        TG_TABLE_SCHEMA
    );
    RETURN NULL;
END;
$$;""")
        for suffix, event, transition in EVENTS:
            sql.append(f"""
DROP TRIGGER IF EXISTS projection_dirty_{suffix} ON {table};
CREATE TRIGGER projection_dirty_{suffix} AFTER {event} ON {table}
    REFERENCING {transition} TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_projection_dirty();""")
    # Contracts that exist before the triggers: projected on the first read or cycle.
    sql.append(
        "INSERT INTO insights_projectiondirty (customer_id)"
        " SELECT DISTINCT customer_id FROM contracts_contract WHERE status = 'active';"
    )
    return "\n".join(sql)


def _drop() -> str:
    sql = []
    for table in SOURCES:
        sql.extend(f"DROP TRIGGER IF EXISTS projection_dirty_{suffix} ON {table};" for suffix, _, _ in EVENTS)
        sql.append(f"DROP FUNCTION IF EXISTS {table}_projection_dirty();")
    return "\n".join(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0002_projections"),
        ("contracts", "0006_contract_renewal_lead_days"),
        ("discounts", "0002_exception_event_ended_early"),
        ("billing", "0007_external_invoices"),
        ("renewals", "0002_alert_value_at_stake"),
    ]

    operations = [migrations.RunSQL(_create(), _drop())]
