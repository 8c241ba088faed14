"""Issued invoices, their lines and credit notes are immutable, enforced by PostgreSQL.

Why in the database: an issued invoice is a legal document that has left the building. Python
checks can be bypassed by the admin, a shell, a bulk ``update()`` or a bug; triggers cannot.

- billing_invoice: once the stored row is not a draft, DELETE is refused, and UPDATE may only
  move the lifecycle columns (status, sent/paid/credited markers). Everything else is compared
  as a whole row (``to_jsonb(row) - lifecycle columns``), so a column added later is protected
  without touching this trigger. Status may never go back to draft.
- billing_invoiceline: INSERT, UPDATE and DELETE are refused when the invoice is not a draft.
- billing_creditnote: never updated or deleted.

Tables are named through TG_TABLE_SCHEMA: every tenant schema has its own copy.
"""
from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lifecycle text[] := ARRAY['status', 'sent_at', 'paid_at', 'amount_paid', 'credited_total'];
BEGIN
    IF OLD.status = 'draft' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice % is % and cannot be deleted; issue a credit note instead', OLD.number, OLD.status
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'invoice_issued_immutable';
    END IF;
    IF NEW.status = 'draft' THEN
        RAISE EXCEPTION 'invoice % was issued and cannot return to draft', OLD.number
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'invoice_issued_immutable';
    END IF;
    IF (to_jsonb(NEW) - lifecycle) IS DISTINCT FROM (to_jsonb(OLD) - lifecycle) THEN
        RAISE EXCEPTION 'invoice % is % and its content cannot change; only its status, sent and paid markers may', OLD.number, OLD.status
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'invoice_issued_immutable';
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    invoice_status text;
    invoice_ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        invoice_ids := ARRAY[NEW.invoice_id];
    ELSIF TG_OP = 'DELETE' THEN
        invoice_ids := ARRAY[OLD.invoice_id];
    ELSE
        invoice_ids := ARRAY[OLD.invoice_id, NEW.invoice_id];
    END IF;
    EXECUTE format('SELECT string_agg(DISTINCT status, '','') FROM %I.billing_invoice WHERE id = ANY($1) AND status <> ''draft''', TG_TABLE_SCHEMA)
        INTO invoice_status USING invoice_ids;
    IF invoice_status IS NOT NULL THEN
        RAISE EXCEPTION 'lines of an issued invoice cannot be added, changed or deleted (invoice is %)', invoice_status
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'invoice_line_issued_immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION billing_creditnote_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit note % is issued and cannot be changed or deleted', OLD.number
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'credit_note_immutable';
END;
$$;

DROP TRIGGER IF EXISTS invoice_issued_immutable ON billing_invoice;
CREATE TRIGGER invoice_issued_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable();
DROP TRIGGER IF EXISTS invoice_line_issued_immutable ON billing_invoiceline;
CREATE TRIGGER invoice_line_issued_immutable BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable();
DROP TRIGGER IF EXISTS credit_note_immutable ON billing_creditnote;
CREATE TRIGGER credit_note_immutable BEFORE UPDATE OR DELETE ON billing_creditnote
    FOR EACH ROW EXECUTE FUNCTION billing_creditnote_immutable();
"""

DROP = r"""
DROP TRIGGER IF EXISTS invoice_issued_immutable ON billing_invoice;
DROP TRIGGER IF EXISTS invoice_line_issued_immutable ON billing_invoiceline;
DROP TRIGGER IF EXISTS credit_note_immutable ON billing_creditnote;
DROP FUNCTION IF EXISTS billing_invoice_immutable();
DROP FUNCTION IF EXISTS billing_invoiceline_immutable();
DROP FUNCTION IF EXISTS billing_creditnote_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
